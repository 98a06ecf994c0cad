"""The state machine's table, row by row, and the control requests' meaning, on a fake clock.

Every row of `transitions.TABLE` is taken through the store, and every move that is not a row is refused
naming both phases. The scenarios drive the real engine on in-memory clusters (tests/unit/engine_doubles.py):
what approve, approve --full, pause, resume and abort do at each kind of step, and the driver's lease.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import update

from orchestrator.rollout.control import ControlError
from orchestrator.rollout.gates import GateResult
from orchestrator.rollout.lease import LeaseHeldError
from orchestrator.rollout.plan import Analyze
from orchestrator.rollout.request import DeployRequest
from orchestrator.store import repository as repo
from orchestrator.store.db import engine_of
from orchestrator.store.models import Deployment, DeploymentEvent, Phase
from orchestrator.store.transitions import TABLE, Event, TransitionError
from tests.unit.engine_doubles import ScriptedGate
from tests.unit.test_engine_machine import RolloutMachine

# The plan of STRATEGY in test_engine_machine, per wave: 0 start canary, 1 setWeight 20, 2 header route,
# 3 pause 20s, 4 analysis, 5 pause (indefinite), 6 setWeight 60, 7 setWeight 100 (implied); wave 2 from 8.
TIMED_PAUSE, ANALYSIS, INDEFINITE_PAUSE = 3, 4, 5


@pytest.fixture
def machine() -> RolloutMachine:
    machine = RolloutMachine()
    machine.deploy(1)  # the first release, deployed directly: later releases have something to compare
    return machine


def a_deployment(machine: RolloutMachine, phase: Phase) -> uuid.UUID:
    """A deployment row standing in `phase` (placed there directly: the rows are what is under test)."""
    with machine.sessions.begin() as session:
        release = repo.get_or_create_release(
            session,
            service="api",
            git_commit="f" * 40,
            image_repository="r",
            manifest_hash="h",
            image_tag="t",
        )
        deployment = repo.create_deployment(
            session,
            release=release,
            environment=f"env-{uuid.uuid4().hex[:8]}",
            strategy="canary",
            clusters=[repo.ClusterPlacement("aws", "aws", "us-west-2")],
        )
        session.flush()
        session.execute(update(Deployment).where(Deployment.id == deployment.id).values(phase=phase.value))
        return deployment.id


@pytest.mark.parametrize(("phase", "event"), sorted(TABLE), ids=lambda v: str(v))
def test_every_row_of_the_table_moves_the_store(machine: RolloutMachine, phase: Phase, event: Event) -> None:
    deployment_id = a_deployment(machine, phase)
    row = TABLE[(phase, event)]
    with machine.sessions.begin() as session:
        deployment = repo.get_deployment(session, deployment_id)
        recorded = repo.set_phase(session, deployment, row.to, event=event, actor="tester")
        assert recorded.data == {"from": phase.value, "to": row.to.value, "event": event.value}
        assert (deployment.phase, recorded.actor) == (row.to.value, "tester")


def test_every_move_that_is_not_a_row_is_refused_naming_both_phases(machine: RolloutMachine) -> None:
    ids = {phase: a_deployment(machine, phase) for phase in Phase}
    refused = 0
    with machine.sessions.begin() as session:
        for phase, event, to in itertools.product(Phase, Event, Phase):
            row = TABLE.get((phase, event))
            if row is not None and row.to is to:
                continue
            deployment = repo.get_deployment(session, ids[phase])
            with pytest.raises(TransitionError, match=f"from {phase.value} to {to.value} on {event.value}"):
                repo.set_phase(session, deployment, to, event=event)
            assert deployment.phase == phase.value
            refused += 1
    assert refused == len(Phase) * len(Event) * len(Phase) - len(TABLE)


def current(machine: RolloutMachine) -> Deployment:
    latest = machine.latest()
    assert latest is not None
    return latest


def events(machine: RolloutMachine, deployment_id: uuid.UUID) -> list[DeploymentEvent]:
    with machine.sessions() as session:
        return repo.events_for(session, deployment_id)


def test_approve_ends_the_indefinite_pause_and_resume_does_not(machine: RolloutMachine) -> None:
    machine.deploy(2)
    paused = current(machine)
    assert (paused.phase, paused.current_step) == ("Paused", INDEFINITE_PAUSE)
    assert list(paused.control["pauses"]) == ["CanaryPauseStep"]  # type: ignore[index]
    with pytest.raises(
        ControlError, match=r"waits for an approval at step 5 \(CanaryPauseStep\); use `approve`"
    ):
        machine.engine().resume(paused.id, actor="ops")
    message = machine.engine().approve(paused.id, actor="ops")
    assert message == "approved by ops: the pause at step 5 ended"
    machine.engine().run(paused.id)
    after = current(machine)
    assert (after.phase, after.current_step) == ("Paused", 8 + INDEFINITE_PAUSE)  # the next wave's pause
    completed = [e for e in events(machine, paused.id) if e.type == "step_completed" and e.step == 5]
    assert [e.message for e in completed] == ["pause until approved · wave 1 (aws): approved"]
    assert [e.actor for e in events(machine, paused.id) if e.type == "control"] == ["ops"]


def at_step(machine: RolloutMachine, deployment_id: uuid.UUID, step: int) -> None:
    """As if the rollout had got there (the steps before are not what is under test)."""
    with engine_of(machine.sessions).begin() as connection:
        connection.execute(update(Deployment).where(Deployment.id == deployment_id).values(current_step=step))


def test_approve_ends_a_timed_pause_early_and_is_refused_elsewhere(machine: RolloutMachine) -> None:
    engine = machine.engine()
    deployment_id = engine.create(machine_request(2))
    at_step(machine, deployment_id, 1)
    with pytest.raises(ControlError, match=r"it is not paused \(step 1: setWeight 20"):
        engine.approve(deployment_id, actor="ops")
    at_step(machine, deployment_id, TIMED_PAUSE)
    assert engine.approve(deployment_id, actor="ops") == "approved by ops: the pause at step 3 ended"
    started = machine.clock.now()
    engine.run(deployment_id)
    assert machine.clock.now() - started < 20  # the 20 s pause did not run out
    labels = [e.message for e in events(machine, deployment_id) if e.type == "step_completed"]
    assert labels[0] == "pause 20s · wave 1 (aws): approved"
    assert current(machine).current_step == INDEFINITE_PAUSE


def machine_request(release: int) -> DeployRequest:
    return DeployRequest(
        service="api",
        environment="local",
        git_commit=f"{release:040d}",
        overrides={"env": {"RELEASE": str(release)}},
        actor="machine",
    )


class PausingGate(ScriptedGate):
    """Its first run is interrupted by a manual pause from another process, as a person would."""

    def __init__(self, pause: Callable[[], object]) -> None:
        super().__init__()
        self.pause = pause

    def __call__(
        self,
        step: Analyze,
        workloads: list[Any],
        record: Callable[[str, str, dict[str, Any]], None],
        should_stop: Callable[[], bool],
    ) -> GateResult:
        if self.runs == 0:
            self.runs += 1
            self.pause()
            assert should_stop()  # the analysis learns of the pause while it measures
            return GateResult(False, "stopped before it could decide")
        return super().__call__(step, workloads, record, should_stop)


def test_a_manual_pause_during_an_analysis_then_approve_runs_the_analysis_again(
    machine: RolloutMachine,
) -> None:
    ids: list[uuid.UUID] = []
    machine.gate = PausingGate(lambda: machine.engine().pause(ids[0], actor="ops"))
    engine = machine.engine()
    ids.append(engine.create(machine_request(2)))
    engine.run(ids[0])
    paused = current(machine)
    assert (paused.phase, paused.current_step) == ("Paused", ANALYSIS)
    assert list(paused.control["pauses"]) == ["Manual"]  # type: ignore[index]
    message = engine.approve(ids[0], actor="ops")
    assert message == "approved by ops: the manual pause ended; the step runs again"
    engine.run(ids[0])
    assert machine.gate.runs == 2  # the analysis ran again: the approval skipped nothing
    after = current(machine)
    assert (after.phase, after.current_step) == ("Paused", INDEFINITE_PAUSE)
    analysis = [e for e in events(machine, ids[0]) if e.type == "step_completed" and e.step == ANALYSIS]
    assert [e.message for e in analysis] == ["analysis passed"]


def test_an_inconclusive_analysis_pauses_approve_goes_on_abort_rolls_back(machine: RolloutMachine) -> None:
    machine.gate_verdicts(["inconclusive"])
    machine.deploy(2)
    paused = current(machine)
    assert (paused.phase, paused.current_step) == ("Paused", ANALYSIS)
    assert list(paused.control["pauses"]) == ["InconclusiveAnalysis"]  # type: ignore[index]
    assert (
        machine.clusters["aws"].weight == 20
    )  # still serving the canary at its weight, waiting for a person
    machine.engine().approve(paused.id, actor="ops")
    machine.engine().run(paused.id)
    assert (current(machine).phase, current(machine).current_step) == ("Paused", INDEFINITE_PAUSE)
    analysis = [e for e in events(machine, paused.id) if e.type == "step_completed" and e.step == ANALYSIS]
    assert [e.message for e in analysis] == [
        "analysis request-success-rate · wave 1 (aws): inconclusive, approved"
    ]

    machine.abort()
    machine.gate_verdicts(["inconclusive"])
    machine.deploy(3)
    inconclusive = current(machine)
    assert inconclusive.phase == "Paused"
    assert machine.engine().abort(inconclusive.id, actor="ops") == ["aws"]
    assert current(machine).phase == "Aborted"
    assert (
        machine.clusters["aws"].at_rest()
        and machine.clusters["aws"].stable == machine.stable_before[inconclusive.id]["aws"]
    )


def test_approve_full_skips_every_remaining_step_analyses_included(machine: RolloutMachine) -> None:
    machine.gate_verdicts(["fail"])  # would fail the rollout, were it run
    engine = machine.engine()
    deployment_id = engine.create(machine_request(2))
    message = engine.approve(deployment_id, full=True, actor="lead")
    assert message == "approve --full by lead: every remaining step skipped, analyses included"
    engine.run(deployment_id)
    assert current(machine).phase == "Succeeded"
    assert machine.gate.runs == 0
    trail = events(machine, deployment_id)
    [override] = [e for e in trail if e.type == "override"]
    assert (override.actor, override.data) == ("lead", {"override": "full_promotion"})
    skipped = [e.step for e in trail if e.type == "step_completed" and e.message.startswith("skipped")]
    assert ANALYSIS in skipped and 8 + ANALYSIS in skipped


def test_a_second_driver_is_refused_while_the_lease_is_live_and_takes_over_after(
    machine: RolloutMachine,
) -> None:
    machine.kill_soon(2, True)
    machine.deploy(2)  # killed in its second step: the dead process keeps its lease
    dead = current(machine)
    assert dead.phase == "Progressing" and dead.lease_owner is not None
    with pytest.raises(LeaseHeldError, match=f"is being driven by {dead.lease_owner}"):
        machine.engine().run(dead.id)
    with pytest.raises(LeaseHeldError):
        machine.engine().resume(dead.id, actor="ops")
    machine.time_passes(31.0)
    successor = machine.engine()
    successor.resume(dead.id, actor="ops")
    successor.run(dead.id)
    after = current(machine)
    assert (after.phase, after.current_step, after.lease_owner) == ("Paused", INDEFINITE_PAUSE, None)
    machine.rules_hold()


def test_a_rollback_owed_by_a_killed_driver_is_finished_not_rolled_forward(machine: RolloutMachine) -> None:
    machine.gate_verdicts(["fail"])
    machine.faults.kill_on = "rollback"  # the gate fails, and the process dies on the rollback's first write
    stable = machine.clusters["aws"].stable
    engine = machine.engine()
    deployment_id = engine.create(machine_request(2))
    machine.drive(engine, deployment_id, lambda: engine.run(deployment_id))
    owed = current(machine)
    assert owed.phase == "Progressing" and owed.control["stop"]["kind"] == "rollback"  # type: ignore[index]
    assert machine.clusters["aws"].weight == 20  # not rolled back yet
    machine.time_passes(31.0)
    successor = machine.engine()
    successor.resume(deployment_id, actor="ops")
    successor.run(deployment_id)
    after = current(machine)
    assert after.phase == "RolledBack" and "analysis failed at step 4" in (after.message or "")
    assert machine.clusters["aws"].at_rest()
    assert machine.clusters["aws"].stable == stable  # the first release, as before
    completed = [e.step for e in events(machine, deployment_id) if e.type == "step_completed"]
    assert completed == [0, 1, 2, 3]  # nothing after the failed analysis ran
