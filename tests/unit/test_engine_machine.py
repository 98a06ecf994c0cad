"""The rollout engine as a state machine, on a fake clock and in-memory clusters (no emulator).

Hypothesis drives random sequences of deploys, control commands (approve, approve --full, pause, resume,
abort, retry), gate verdicts, unreachable clusters, crashing routers, process kills, the passing of time
and the environment starting or ceasing to require approvals, and after every rule checks what must always
hold:
- never two active rollouts of one service in one environment (one awaiting approval counts);
- a deployment that was never approved (AwaitingApproval, or Aborted from there) touched no cluster and
  holds no lease;
- a finished deployment left its clusters as its phase says: all on the new release (Succeeded), or all on
  stable with the canary at 0 and no managed route left (RolledBack, Aborted), and the store says the same;
- no step's completion is recorded twice.
"""

from __future__ import annotations

import copy
import re
import tempfile
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from orchestrator.config import Project
from orchestrator.render.manifests import RenderedSet
from orchestrator.rollout.control import ControlError
from orchestrator.rollout.engine import AbortDeclinedError, RolloutEngine, RolloutError
from orchestrator.rollout.lease import LeaseHeldError
from orchestrator.rollout.request import DeployRequest
from orchestrator.runtime import open_store
from orchestrator.store import repository as repo
from orchestrator.store.db import engine_of
from orchestrator.store.models import (
    ACTIVE_PHASES,
    TERMINAL_PHASES,
    ClusterDeployment,
    Deployment,
    DeploymentEvent,
    Phase,
    Release,
)
from tests.helpers import copy_estate
from tests.unit.engine_doubles import (
    FakeClock,
    Faults,
    Killed,
    MemoryCluster,
    MemoryDesiredState,
    ScriptedGate,
    memory_workloads,
)

CLUSTERS = ("aws", "azure", "gcp")
STRATEGY = """strategy:
  canary:
    steps:
      - setWeight: 20
      - setHeaderRoute:
          name: testers
          match:
            - headerName: x-canary
              headerValue: {exact: "yes"}
      - pause: {duration: 20s}
      - analysis:
          templates:
            - templateName: request-success-rate
      - pause: {}
      - setWeight: 60
"""
LEASE = 30.0


def estate(root: Path) -> Project:
    copy_estate(root)
    path = root / "pipelines" / "api.yaml"
    path.write_text(re.sub(r"strategy:\n(?:(?:  |    ).*\n)+", STRATEGY, path.read_text()))
    return Project(root)


class World:
    """What every example shares: the estate, its renders, and a SQLite store (emptied per example)."""

    def __init__(self) -> None:
        folder = Path(tempfile.mkdtemp(prefix="engine-machine-"))
        self.project = estate(folder / "estate")
        # The same estate where `local` requires an approval (renders are the same: the cache serves both).
        gated = estate(folder / "gated")
        local = gated.root / "environments" / "local.yaml"
        local.write_text(local.read_text() + "approval:\n  required: true\n")
        self.gated = Project(gated.root)
        self.sessions: sessionmaker[Session] = open_store(f"sqlite:///{folder / 'state.db'}")
        self.renders: dict[str, list[RenderedSet]] = {}

    def empty(self) -> None:
        with engine_of(self.sessions).begin() as connection:
            for table in (DeploymentEvent, ClusterDeployment, Deployment, Release):
                connection.execute(delete(table))


class MachineEngine(RolloutEngine):
    """The engine, with each release rendered once for all examples (rendering is not under test here)."""

    def __init__(self, world: World, *, gated: bool = False, **kwargs: Any) -> None:
        super().__init__(world.gated if gated else world.project, world.sessions, **kwargs)
        self.world = world

    def render(self, request: DeployRequest) -> list[RenderedSet]:
        key = request.model_dump_json()
        if key not in self.world.renders:
            self.world.renders[key] = super().render(request)
        return self.world.renders[key]


_world: World | None = None


def world() -> World:
    global _world
    if _world is None:
        _world = World()
    return _world


class RolloutMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.world = world()
        self.world.empty()
        self.sessions = self.world.sessions
        self.clock = FakeClock()
        self.clusters = {name: MemoryCluster(name) for name in CLUSTERS}
        self.faults = Faults()
        self.gate = ScriptedGate()
        self.desired = MemoryDesiredState()
        self.stable_before: dict[uuid.UUID, dict[str, str | None]] = {}
        self.approval_required = False
        # The clusters as each deployment found them.
        self.at_creation: dict[uuid.UUID, dict[str, MemoryCluster]] = {}

    # --- plumbing -----------------------------------------------------------------------------------------

    def engine(self) -> RolloutEngine:
        """A fresh engine: another process, with its own lease owner."""
        return MachineEngine(
            self.world,
            desired=self.desired,
            gated=self.approval_required,
            workloads=memory_workloads(self.clusters, self.faults),
            clock=self.clock,
            gates=self.gate.factory,
            poll_interval=5.0,
            lease_seconds=LEASE,
            heartbeat_seconds=5.0,
            lease_thread=False,
        )

    def drive(self, engine: RolloutEngine, deployment_id: uuid.UUID, action: Callable[[], Any]) -> None:
        """Run an engine call; a kill leaves the deployment as a dead process would, lease and all."""
        try:
            action()
        except Killed:
            self.faults.kill_after = None
            # The dying process's `finally` gave its lease back; a SIGKILLed one never gets to.
            with engine_of(self.sessions).begin() as connection:
                connection.execute(
                    update(Deployment)
                    .where(Deployment.id == deployment_id)
                    .values(
                        lease_owner=engine.owner,
                        lease_heartbeat_at=self._moment(0),
                        lease_expires_at=self._moment(LEASE),
                    )
                )

    def _moment(self, offset: float) -> datetime:
        return datetime.fromtimestamp(self.clock.now() + offset, UTC)

    def latest(self) -> Deployment | None:
        with self.sessions() as session:
            found = repo.latest_deployment(session, "api", "local")
            if found is not None:
                assert found.plan is not None  # loaded before the row leaves the session (it is deferred)
                session.expunge(found)
            return found

    def live_lease(self, deployment: Deployment) -> bool:
        return (
            deployment.lease_owner is not None
            and deployment.lease_expires_at is not None
            and deployment.lease_expires_at > self._moment(0)
        )

    # --- rules --------------------------------------------------------------------------------------------

    @rule(release=st.integers(1, 3))
    def deploy(self, release: int) -> None:
        before = self.latest()
        active = before is not None and Phase(before.phase) in ACTIVE_PHASES
        engine = self.engine()
        request = DeployRequest(
            service="api",
            environment="local",
            git_commit=f"{release:040d}",
            overrides={"env": {"RELEASE": str(release)}},
            actor="machine",
        )
        try:
            deployment_id = engine.create(request)
        except repo.DeploymentConflictError:
            assert active
            after = self.latest()
            assert after is not None and before is not None and after.id == before.id  # nothing recorded
            return
        assert not active, "a second rollout was accepted while one is active"
        self.stable_before[deployment_id] = {name: c.stable for name, c in self.clusters.items()}
        self.at_creation[deployment_id] = copy.deepcopy(self.clusters)
        self.drive(engine, deployment_id, lambda: engine.run(deployment_id))

    @rule()
    def resume(self) -> None:
        latest = self.latest()
        if latest is None:
            return
        engine = self.engine()
        live = self.live_lease(latest)
        try:
            engine.resume(latest.id, actor="machine")
        except LeaseHeldError:
            assert live
            return
        except ControlError:
            return  # finished, or waiting for an approval: checked in test_transitions
        assert not live, "resume was accepted while another engine's lease was live"
        self.drive(engine, latest.id, lambda: engine.run(latest.id))

    @rule(full=st.booleans())
    def approve(self, full: bool) -> None:
        latest = self.latest()
        if latest is None:
            return
        engine = self.engine()
        try:
            engine.approve(latest.id, full=full, actor="machine")
        except ControlError:
            return
        if engine.driver(latest.id) is None:
            self.drive(engine, latest.id, lambda: engine.run(latest.id))

    @rule()
    def pause(self) -> None:
        latest = self.latest()
        if latest is None:
            return
        try:
            self.engine().pause(latest.id, actor="machine")
        except ControlError:
            assert Phase(latest.phase) is not Phase.PROGRESSING or latest.control.get("stop")  # type: ignore[union-attr]

    @rule()
    def abort(self) -> None:
        latest = self.latest()
        if latest is None:
            return
        engine = self.engine()
        abortable = Phase(latest.phase) not in (Phase.SUCCEEDED, Phase.ROLLED_BACK, Phase.ABORTED)
        try:
            self.drive(engine, latest.id, lambda: engine.abort(latest.id, actor="machine"))
        except ControlError:
            assert not abortable
            return
        except AbortDeclinedError:
            # Too late: the final promotion had begun. A killed driver left a cluster promoted, so the
            # rollout was finished instead (Succeeded); or the promotion failed part-way, and the deployment
            # stays Failed over the clusters it promoted. finished_means_what_it_says checks the clusters.
            after = self.latest()
            assert after is not None and Phase(after.phase) in (Phase.SUCCEEDED, Phase.FAILED)
            return
        except RolloutError:
            # A rollback that could not finish (a cluster unreachable, or its router failing) leaves the
            # deployment Failed, with the failure recorded; a later abort finishes it.
            after = self.latest()
            assert after is not None and Phase(after.phase) is Phase.FAILED
            return
        assert abortable

    @rule()
    def retry(self) -> None:
        latest = self.latest()
        if latest is None:
            return
        engine = self.engine()
        try:
            new_id = engine.retry(latest.id, actor="machine")
        except ControlError:
            assert Phase(latest.phase) not in (Phase.ROLLED_BACK, Phase.ABORTED, Phase.FAILED)
            return
        except (LeaseHeldError, RolloutError):
            return  # a live driver, or a rollback that still cannot finish
        except Killed:
            self.faults.kill_after = None
            return
        self.stable_before[new_id] = {name: c.stable for name, c in self.clusters.items()}
        self.at_creation[new_id] = copy.deepcopy(self.clusters)
        self.drive(engine, new_id, lambda: engine.run(new_id))

    @rule(verdicts=st.lists(st.sampled_from(["pass", "fail", "inconclusive"]), min_size=1, max_size=3))
    def gate_verdicts(self, verdicts: list[str]) -> None:
        self.gate.verdicts = verdicts

    @rule(cluster=st.sampled_from(CLUSTERS), down=st.booleans())
    def cluster_reachable(self, cluster: str, down: bool) -> None:
        self.clusters[cluster].down = down

    @rule(cluster=st.sampled_from(CLUSTERS), operation=st.sampled_from([None, "promote", "rollback"]))
    def router_bug(self, cluster: str, operation: str | None) -> None:
        """The cluster's next operation raises (a bug), or its next of that kind: a promotion that fails
        part-way, a rollback that does."""
        self.faults.crash_in, self.faults.crash_operation = cluster, operation

    @rule(after=st.integers(0, 10), before_write=st.booleans())
    def kill_soon(self, after: int, before_write: bool) -> None:
        self.faults.kill_after, self.faults.kill_before_write = after, before_write

    @rule(required=st.booleans())
    def require_approval(self, required: bool) -> None:
        """The environment's owners change `approval.required` (new deployments follow it)."""
        self.approval_required = required

    @rule(seconds=st.sampled_from([1.0, 10.0, 31.0]))
    def time_passes(self, seconds: float) -> None:
        self.clock.advance(seconds)

    # --- invariants ---------------------------------------------------------------------------------------

    @invariant()
    def rules_hold(self) -> None:
        # One session and a few plain queries: they run after every rule of every example.
        with self.sessions() as session:
            self.one_active_rollout(session)
            self.never_approved_touched_nothing(session)
            self.no_step_recorded_twice(session)
            self.finished_means_what_it_says(session)

    def one_active_rollout(self, session: Session) -> None:
        active = session.scalars(
            select(Deployment.id).where(Deployment.phase.in_([p.value for p in ACTIVE_PHASES]))
        ).all()
        assert len(active) <= 1, active

    def never_approved_touched_nothing(self, session: Session) -> None:
        latest = session.execute(
            select(Deployment.id, Deployment.phase, Deployment.started_at, Deployment.lease_owner)
            .order_by(Deployment.created_at.desc(), Deployment.id.desc())
            .limit(1)
        ).first()
        if latest is None or latest.started_at is not None:
            return  # nothing yet, or it was started (approved, or no approval needed)
        assert Phase(latest.phase) in (Phase.AWAITING_APPROVAL, Phase.ABORTED), latest
        assert latest.lease_owner is None, latest
        before = self.at_creation[latest.id]
        for name, cluster in self.clusters.items():
            assert _served(cluster) == _served(before[name]), (latest, name, cluster)

    def no_step_recorded_twice(self, session: Session) -> None:
        rows = session.execute(
            select(DeploymentEvent.deployment_id, DeploymentEvent.step).where(
                DeploymentEvent.type == "step_completed"
            )
        ).all()
        counts = Counter((row.deployment_id, row.step) for row in rows)
        assert all(n == 1 for n in counts.values()), counts

    def finished_means_what_it_says(self, session: Session) -> None:
        latest = session.execute(
            select(Deployment.id, Deployment.phase, Deployment.plan, Deployment.started_at)
            .order_by(Deployment.created_at.desc(), Deployment.id.desc())
            .limit(1)
        ).first()
        if latest is None or Phase(latest.phase) not in TERMINAL_PHASES - {Phase.FAILED}:
            return
        if latest.started_at is None:
            return  # aborted before its approval: it touched nothing (never_approved_touched_nothing)
        rows = {
            r.cluster: (r.phase, r.canary_weight)
            for r in session.execute(
                select(
                    ClusterDeployment.cluster, ClusterDeployment.phase, ClusterDeployment.canary_weight
                ).where(ClusterDeployment.deployment_id == latest.id)
            )
        }
        versions = {s["cluster"]: s["version"] for s in (latest.plan or {}).get("sets", [])}
        phase = Phase(latest.phase)
        for name, cluster in self.clusters.items():
            assert cluster.at_rest(), (phase, name, cluster)
            if phase is Phase.SUCCEEDED:
                assert cluster.stable == versions[name], (name, cluster)
                assert rows[name] == (Phase.SUCCEEDED.value, 0), rows
            else:
                before = self.stable_before.get(latest.id, {}).get(name)
                if before is not None:  # a promotion that failed part-way stays Failed (not checked here)
                    assert cluster.stable == before, (phase, name, cluster, before)
                assert rows[name][1] == 0, rows


def test_the_engine_keeps_its_rules_under_random_steps_commands_faults_and_kills() -> None:
    run_state_machine_as_test(
        RolloutMachine,
        settings=settings(
            max_examples=200,
            stateful_step_count=12,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


def test_the_machine_reaches_every_outcome() -> None:
    """The doubles are not too kind: sequences written out reach each terminal phase, and a kill."""
    machine = RolloutMachine()
    machine.deploy(1)
    assert _phase(machine) is Phase.SUCCEEDED  # first release: deployed directly
    machine.deploy(2)
    assert _phase(machine) is Phase.PAUSED  # the indefinite pause
    machine.approve(False)
    assert _phase(machine) is Phase.PAUSED  # the same pause of the second wave
    machine.approve(False)
    assert _phase(machine) is Phase.SUCCEEDED
    machine.rules_hold()
    machine.gate_verdicts(["fail"])
    machine.deploy(3)
    assert _phase(machine) is Phase.ROLLED_BACK
    machine.rules_hold()
    machine.retry()
    assert _phase(machine) is Phase.PAUSED
    machine.abort()
    assert _phase(machine) is Phase.ABORTED
    machine.rules_hold()
    machine.kill_soon(1, True)
    machine.deploy(3)
    latest = machine.latest()
    assert latest is not None and Phase(latest.phase) is Phase.PROGRESSING and machine.live_lease(latest)
    machine.resume()  # refused: the dead driver's lease is live
    assert _phase(machine) is Phase.PROGRESSING
    machine.time_passes(31.0)
    machine.resume()
    assert _phase(machine) is Phase.PAUSED
    machine.rules_hold()
    machine.abort()
    machine.require_approval(True)
    machine.deploy(4)
    assert _phase(machine) is Phase.AWAITING_APPROVAL
    machine.approve(True)  # refused: the approval that starts a rollout skips nothing
    assert _phase(machine) is Phase.AWAITING_APPROVAL
    machine.abort()
    assert _phase(machine) is Phase.ABORTED  # before its approval: nothing touched
    machine.rules_hold()
    machine.retry()
    assert _phase(machine) is Phase.AWAITING_APPROVAL
    machine.approve(False)
    assert _phase(machine) is Phase.PAUSED  # started, and at the first wave's indefinite pause
    machine.rules_hold()


def test_an_abort_after_the_promotion_began_finishes_the_promotion() -> None:
    """A driver killed mid-promotion left clusters on the new release as their stable; a rollback cannot take
    a promoted stable back, so the abort is declined and says so, and the promotion is finished: the
    deployment is Succeeded, which is what the clusters run (the case hypothesis found)."""
    machine = RolloutMachine()
    machine.deploy(2)
    machine.kill_soon(5, False)
    machine.deploy(1)
    assert _phase(machine) is Phase.PAUSED
    machine.approve(True)  # approve --full: the promotion is under way when the process dies
    latest = machine.latest()
    assert latest is not None and Phase(latest.phase) is Phase.PROGRESSING
    new = {s["cluster"]: s["version"] for s in latest.plan["sets"]}
    assert any(c.stable == new[name] for name, c in machine.clusters.items())
    engine = machine.engine()
    try:
        engine.abort(latest.id, actor="machine")
    except AbortDeclinedError as exc:
        assert "promotion" in str(exc) and "orchestrator rollback" in str(exc)
    else:
        raise AssertionError("the abort was not declined")
    assert _phase(machine) is Phase.SUCCEEDED
    assert all(c.stable == new[name] and c.at_rest() for name, c in machine.clusters.items())
    with machine.sessions() as session:
        declined = session.scalars(
            select(DeploymentEvent.message).where(
                DeploymentEvent.deployment_id == latest.id, DeploymentEvent.type == "abort_declined"
            )
        ).all()
    assert len(declined) == 1 and "final promotion had begun" in declined[0]
    machine.rules_hold()


def test_an_abort_before_the_promotion_still_rolls_back() -> None:
    """The same rollout aborted at its last pause (nothing promoted yet) is rolled back and Aborted."""
    machine = RolloutMachine()
    machine.deploy(2)
    machine.deploy(1)
    machine.approve(False)
    assert _phase(machine) is Phase.PAUSED
    machine.abort()
    assert _phase(machine) is Phase.ABORTED
    machine.rules_hold()


def _served(cluster: MemoryCluster) -> tuple[Any, ...]:
    """What a cluster serves, and how often it was written (whether it is reachable is not its state)."""
    return (
        cluster.stable,
        cluster.canary,
        cluster.canary_replicas,
        cluster.canary_subset,
        cluster.weight,
        cluster.routes,
        cluster.writes,
    )


def _phase(machine: RolloutMachine) -> Phase:
    latest = machine.latest()
    assert latest is not None
    return Phase(latest.phase)


def test_a_promotion_that_failed_part_way_stays_failed_over_the_clusters_it_promoted() -> None:
    """The final promotion fails on its last cluster: the ones promoted run the new release, and no abort
    records RolledBack or Aborted over them. The abort is declined, saying which run what; `retry` rolls
    the release out again, and the failed deployment's record stays what it was."""
    machine = RolloutMachine()
    machine.deploy(2)
    machine.deploy(1)
    machine.approve(False)  # past the first wave's indefinite pause: at the second wave's
    machine.faults.crash_in, machine.faults.crash_operation = "gcp", "promote"
    machine.approve(False)
    failed = machine.latest()
    assert failed is not None and Phase(failed.phase) is Phase.FAILED
    new = {s["cluster"]: s["version"] for s in failed.plan["sets"]}
    runs = {name: c.stable == new[name] for name, c in machine.clusters.items()}
    assert runs == {"aws": True, "azure": True, "gcp": False}
    assert all(c.at_rest() for c in machine.clusters.values())

    def recorded() -> dict[str, str]:
        with machine.sessions() as session:
            return dict(
                session.execute(
                    select(ClusterDeployment.cluster, ClusterDeployment.phase).where(
                        ClusterDeployment.deployment_id == failed.id
                    )
                ).all()
            )

    # What each cluster runs: the promoted ones Succeeded, the other rolled back.
    assert recorded() == {"aws": "Succeeded", "azure": "Succeeded", "gcp": "RolledBack"}
    with machine.sessions() as session:
        message = repo.get_deployment(session, failed.id).message
    assert "rolled back gcp" in message and "aws, azure run the new release" in message

    engine = machine.engine()
    try:
        engine.abort(failed.id, actor="machine")
    except AbortDeclinedError as exc:
        assert "stays Failed" in str(exc) and "aws, azure run the new release" in str(exc)
        assert "orchestrator rollback" in str(exc) and "orchestrator retry" in str(exc)
    else:
        raise AssertionError("the abort was not declined")
    assert _phase(machine) is Phase.FAILED and recorded()["aws"] == "Succeeded"
    with machine.sessions() as session:
        trail = session.execute(
            select(DeploymentEvent.type, DeploymentEvent.actor, DeploymentEvent.message)
            .where(DeploymentEvent.deployment_id == failed.id)
            .order_by(DeploymentEvent.seq)
        ).all()
        still_owed = repo.get_deployment(session, failed.id).control
    # The trail says who asked and that it was declined, as for an abort after the promotion succeeded.
    kind, actor, text = trail[-1]
    assert (kind, actor) == ("abort_declined", "machine"), trail[-3:]
    assert "aws, azure run the new release" in text
    assert (still_owed or {}).get("stop") is None, still_owed  # nothing owed any more
    assert {name: c.stable == new[name] for name, c in machine.clusters.items()} == runs
    machine.rules_hold()

    machine.retry()  # the same release again: gcp gets its canary, the others are on it already
    retried = machine.latest()
    assert retried is not None and retried.id != failed.id
    while _phase(machine) is Phase.PAUSED:
        machine.approve(False)
    assert _phase(machine) is Phase.SUCCEEDED
    assert all(c.stable == new[name] and c.at_rest() for name, c in machine.clusters.items())
    with machine.sessions() as session:
        assert repo.get_deployment(session, failed.id).phase == Phase.FAILED.value
    machine.rules_hold()


def test_a_rollback_says_which_clusters_keep_the_new_release_because_nothing_else_ran_there() -> None:
    """A cluster new to the environment (nothing running) gets the release directly while the others run a
    canary; the gate fails and the others are rolled back. Moving traffic changes nothing on the new one:
    its record stays what it runs (Succeeded, deployed directly), and the message says so."""
    machine = RolloutMachine()
    machine.deploy(1)
    assert _phase(machine) is Phase.SUCCEEDED
    machine.clusters["aws"] = MemoryCluster("aws")  # a fresh cluster (the first wave): nothing runs there yet
    machine.gate_verdicts(["fail"])
    machine.deploy(2)
    while _phase(machine) is Phase.PAUSED:
        machine.approve(False)
    latest = machine.latest()
    assert latest is not None and Phase(latest.phase) is Phase.ROLLED_BACK
    new = {s["cluster"]: s["version"] for s in latest.plan["sets"]}
    assert machine.clusters["aws"].stable == new["aws"]
    assert all(machine.clusters[c].stable != new[c] for c in ("azure", "gcp"))
    with machine.sessions() as session:
        rows = dict(
            session.execute(
                select(ClusterDeployment.cluster, ClusterDeployment.phase).where(
                    ClusterDeployment.deployment_id == latest.id
                )
            ).all()
        )
        message = repo.get_deployment(session, latest.id).message
    assert rows == {"aws": "Succeeded", "azure": "RolledBack", "gcp": "RolledBack"}
    assert "rolled back azure, gcp" in message
    assert "the new release stays on aws (deployed directly" in message
    machine.rules_hold()


def test_a_deployments_frozen_plan_is_loaded_only_where_it_is_read() -> None:
    """The plan (the rendered manifests, tens of KB) is a deferred column: the rows `history`, `status` and
    each step load leave it in the database until `.plan` is read, in the session."""
    from sqlalchemy import inspect

    machine = RolloutMachine()
    machine.deploy(2)
    with machine.sessions() as session:
        found = repo.latest_deployment(session, "api", "local")
        assert found is not None and "plan" in inspect(found).unloaded
        assert found.plan is not None and found.plan["sets"]
        assert "plan" not in inspect(found).unloaded
