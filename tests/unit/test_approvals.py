"""Deployments that wait for a person, and freeze windows, on a fake clock and in-memory clusters.

An environment with `approval.required` records a deployment AwaitingApproval before any cluster is
reached; `approve` starts it, recording who; `abort` ends it with nothing touched; a `deploy` that waits
holds the lease and drives the rollout once another process approves. Freeze windows refuse a deploy, a
retry and an approval that would start one, unless an admin overrides them with a reason, recorded.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from orchestrator.config import ClusterConfig, Project
from orchestrator.errors import ConfigError
from orchestrator.identity.principal import BOOTSTRAP, Principal
from orchestrator.identity.rules import PermissionDeniedError
from orchestrator.render.manifests import RenderedSet
from orchestrator.rollout.control import ControlError
from orchestrator.rollout.engine import RolloutEngine
from orchestrator.rollout.policy import FrozenError
from orchestrator.rollout.request import DeployRequest
from orchestrator.rollout.workloads import Workload
from orchestrator.runtime import open_store
from orchestrator.store import repository as repo
from orchestrator.store.models import Deployment, DeploymentEvent, Phase, Role
from orchestrator.store.transitions import Event
from tests.helpers import REPO
from tests.unit.engine_doubles import (
    FakeClock,
    Faults,
    MemoryCluster,
    MemoryDesiredState,
    ScriptedGate,
    memory_workloads,
)
from tests.unit.test_engine_machine import CLUSTERS, estate

APPROVAL = """approval:
  required: true
  approvers: [admin, qa@example.com]
"""
# The fake clock starts at 2027-01-15T08:00:00Z: this window holds it.
FREEZE = """freezeWindows:
  - start: 2027-01-15T00:00:00Z
    end: 2027-01-16T00:00:00Z
    reason: quarter close
"""
ADMIN = Principal(email="admin@example.com", role=Role.ADMIN)
DEPLOYER = Principal(email="dev@example.com", role=Role.DEPLOYER)


class World:
    """One estate whose `local` environment carries the policies under test, a store, in-memory clusters."""

    def __init__(self, root: Path, policies: str) -> None:
        estate(root / "estate")
        local = root / "estate" / "environments" / "local.yaml"
        local.write_text(local.read_text() + policies)
        self.project = Project(root / "estate")
        self.sessions: sessionmaker[Session] = open_store(f"sqlite:///{root / 'state.db'}")
        self.clock = FakeClock()
        self.clusters = {name: MemoryCluster(name) for name in CLUSTERS}
        self.faults = Faults()
        self.desired = MemoryDesiredState()  # the GitOps repository: a deployment commits once it starts
        self.connections = 0  # workloads made: a cluster reached

    def workloads(self) -> Callable[[ClusterConfig, RenderedSet], Workload]:
        inner = memory_workloads(self.clusters, self.faults)

        def counted(config: ClusterConfig, rendered: RenderedSet) -> Workload:
            self.connections += 1
            return inner(config, rendered)

        return counted

    def engine(self, **kwargs: Any) -> RolloutEngine:
        """A fresh engine: another process, with its own lease owner."""
        return RolloutEngine(
            self.project,
            self.sessions,
            desired=self.desired,
            workloads=self.workloads(),
            clock=self.clock,
            gates=ScriptedGate().factory,
            poll_interval=5.0,
            lease_thread=False,
            **kwargs,
        )

    def deployment(self, deployment_id: uuid.UUID) -> Deployment:
        with self.sessions() as session:
            found = repo.get_deployment(session, deployment_id)
            session.expunge(found)
            return found

    def events(self, deployment_id: uuid.UUID) -> list[DeploymentEvent]:
        with self.sessions() as session:
            return repo.events_for(session, deployment_id)

    def untouched(self) -> bool:
        """No cluster reached or written, and no desired state committed."""
        clusters = all(c.writes == 0 and c.stable is None for c in self.clusters.values())
        return self.connections == 0 and clusters and not self.desired.commits


def request(release: int = 1, actor: str = "dev@example.com") -> DeployRequest:
    return DeployRequest(
        service="api",
        environment="local",
        git_commit=f"{release:040d}",
        overrides={"env": {"RELEASE": str(release)}},
        actor=actor,
    )


@pytest.fixture
def approvals(tmp_path: Path) -> World:
    return World(tmp_path, APPROVAL)


def test_an_approval_environment_records_the_deployment_waiting_with_nothing_touched(
    approvals: World,
) -> None:
    engine = approvals.engine()
    deployment_id = engine.create(request())
    waiting = approvals.deployment(deployment_id)
    assert waiting.phase == Phase.AWAITING_APPROVAL.value
    assert waiting.lease_owner is None  # nobody drives it until it is approved
    assert waiting.message == (
        "waiting for an approval (local's approval.approvers: admin, qa@example.com): "
        f"`orchestrator approve {str(deployment_id)[:8]}`"
    )
    phases = [e.data for e in approvals.events(deployment_id) if e.type == "phase"]
    assert phases == [{"from": "Pending", "to": "AwaitingApproval", "event": "await_approval"}]
    assert engine.run(deployment_id) is Phase.AWAITING_APPROVAL  # not driven without an approval
    assert approvals.untouched()
    # It holds its environment: a second deploy is refused, naming it.
    with pytest.raises(
        repo.DeploymentConflictError, match=f"by deployment {deployment_id} \\(AwaitingApproval"
    ):
        approvals.engine().create(request(2))


def test_approve_starts_it_recording_who_and_the_rollout_runs(approvals: World) -> None:
    deployment_id = approvals.engine().create(request())
    approver = approvals.engine()
    assert (
        approver.approve(deployment_id, actor="qa@example.com")
        == "approved by qa@example.com: the rollout starts"
    )
    started = approvals.deployment(deployment_id)
    assert started.phase == Phase.PROGRESSING.value and started.current_step == 0
    moved = [e for e in approvals.events(deployment_id) if e.type == "phase"][-1]
    assert (moved.data, moved.actor) == (
        {"from": "AwaitingApproval", "to": "Progressing", "event": "approve"},
        "qa@example.com",
    )
    assert approvals.untouched()  # approving records; driving is what touches clusters
    assert approver.run(deployment_id) is Phase.SUCCEEDED
    assert all(c.stable is not None for c in approvals.clusters.values())
    # Once it runs it is an ordinary rollout: a second approval has no pause to end.
    with pytest.raises(ControlError, match="Succeeded; approve does not apply"):
        approver.approve(deployment_id, actor="qa@example.com")


def test_a_waiting_deploy_holds_the_lease_and_drives_once_another_process_approves(approvals: World) -> None:
    deployer = approvals.engine()
    deployment_id = deployer.create(request())
    reports: list[dict[str, Any]] = []
    deployer.report = reports.append
    seen: list[str | None] = []

    class ApprovingClock(FakeClock):
        """Time passes while the deployer waits; on its third poll an approver (another process) approves."""

        polls = 0

        def sleep(self, seconds: float) -> None:
            super().sleep(seconds)
            self.polls += 1
            if self.polls == 3:
                approver = approvals.engine()
                holder = approver.driver(deployment_id)
                seen.append(holder.owner if holder else None)
                approver.approve(deployment_id, actor="admin@example.com")

    clock = ApprovingClock(approvals.clock.now())
    deployer.clock = clock
    assert deployer.run(deployment_id, wait_for_approval=True) is Phase.SUCCEEDED
    assert seen == [deployer.owner]  # the approver saw a live driver: it leaves the rollout to it
    assert reports[0]["type"] == "awaiting_approval" and reports[0]["deployment"] == str(deployment_id)
    assert [r["type"] for r in reports].count("awaiting_approval") == 1
    assert approvals.deployment(deployment_id).lease_owner is None  # given back when it finished


def test_a_deploy_left_waiting_is_approved_and_run_by_the_approver(approvals: World) -> None:
    """`deploy --no-wait`, or a waiting deploy that is gone: the approver finds no driver and drives it."""
    deployment_id = approvals.engine().create(request())
    approver = approvals.engine()
    approver.approve(deployment_id, actor="admin@example.com")
    assert approver.driver(deployment_id) is None
    assert approver.run(deployment_id) is Phase.SUCCEEDED


def test_abort_before_the_approval_touches_nothing(approvals: World) -> None:
    deployment_id = approvals.engine().create(request())
    assert approvals.engine().abort(deployment_id, actor="ops") == []
    aborted = approvals.deployment(deployment_id)
    assert aborted.phase == Phase.ABORTED.value
    assert aborted.message == "aborted by ops before its approval; no cluster was touched"
    assert approvals.untouched()
    with pytest.raises(ControlError, match="Aborted; approve does not apply"):
        approvals.engine().approve(deployment_id, actor="admin@example.com")
    approvals.engine().create(request(2))  # the environment is free again


def test_what_does_not_apply_before_the_approval_says_how_to_start_it(approvals: World) -> None:
    deployment_id = approvals.engine().create(request())
    short = str(deployment_id)[:8]
    engine = approvals.engine()
    with pytest.raises(ControlError) as full:
        engine.approve(deployment_id, full=True, actor="admin@example.com")
    assert "the approval that starts a rollout does not skip its steps" in str(full.value)
    for refused in (engine.resume, engine.pause):
        with pytest.raises(
            ControlError, match=f"does not apply until it is approved: `orchestrator approve {short}`"
        ):
            refused(deployment_id, actor="ops")
    with pytest.raises(ControlError, match="AwaitingApproval; retry does not apply"):
        engine.retry(deployment_id, actor="ops")
    assert approvals.deployment(deployment_id).phase == Phase.AWAITING_APPROVAL.value
    assert approvals.untouched()


def test_a_retry_waits_for_an_approval_again(approvals: World) -> None:
    deployment_id = approvals.engine().create(request())
    approvals.engine().abort(deployment_id, actor="ops")
    again = approvals.engine().retry(deployment_id, actor="ops")
    assert approvals.deployment(again).phase == Phase.AWAITING_APPROVAL.value
    assert approvals.untouched()


# --- freeze windows -----------------------------------------------------------------------------------------


def test_a_freeze_window_refuses_a_deploy_and_nothing_is_recorded(tmp_path: Path) -> None:
    frozen = World(tmp_path, FREEZE)
    with pytest.raises(
        FrozenError,
        match=r"freeze window from 2027-01-15T00:00:00\+00:00 to 2027-01-16T00:00:00"
        r"\+00:00 \(quarter close\) is in force",
    ):
        frozen.engine().create(request(), principal=DEPLOYER)
    with frozen.sessions() as session:
        assert repo.latest_deployment(session, "api", "local") is None
    with pytest.raises(PermissionDeniedError, match="may not override a freeze window in local"):
        frozen.engine().create(request(), principal=DEPLOYER, override_freeze="urgent")
    frozen.clock.advance(16 * 3600)  # the window is over at midnight
    assert frozen.engine().create(request(), principal=DEPLOYER)


def test_an_admin_override_is_recorded_with_who_and_why(tmp_path: Path) -> None:
    frozen = World(tmp_path, FREEZE)
    engine = frozen.engine()
    deployment_id = engine.create(
        request(actor="admin@example.com"), principal=ADMIN, override_freeze="CVE fix"
    )
    [override] = [e for e in frozen.events(deployment_id) if e.type == "override"]
    assert override.actor == "admin@example.com"
    assert override.data["reason"] == "CVE fix"  # type: ignore[index]
    assert override.data["windows"] == [  # type: ignore[index]
        {"start": "2027-01-15T00:00:00+00:00", "end": "2027-01-16T00:00:00+00:00", "reason": "quarter close"}
    ]
    assert "overridden by admin@example.com in local" in override.message
    assert engine.run(deployment_id) is Phase.SUCCEEDED


def test_an_approval_inside_a_freeze_window_is_refused_unless_overridden(tmp_path: Path) -> None:
    world = World(tmp_path, APPROVAL + FREEZE)
    world.clock.advance(-12 * 3600)  # the day before the window: recorded, waiting
    deployment_id = world.engine().create(request())
    world.clock.advance(12 * 3600)  # approved inside the window
    with pytest.raises(
        FrozenError, match=f"approval of deployment {str(deployment_id)[:8]} to local refused"
    ):
        world.engine().approve(deployment_id, actor="qa@example.com", principal=DEPLOYER)
    assert world.deployment(deployment_id).phase == Phase.AWAITING_APPROVAL.value
    world.engine().approve(
        deployment_id, actor="admin@example.com", principal=ADMIN, override_freeze="the fix cannot wait"
    )
    events = world.events(deployment_id)
    assert [(e.type, e.actor) for e in events if e.type == "override"] == [("override", "admin@example.com")]
    assert world.deployment(deployment_id).phase == Phase.PROGRESSING.value


def test_a_deployment_whose_own_override_covers_the_window_is_approved_without_another(
    tmp_path: Path,
) -> None:
    world = World(tmp_path, APPROVAL + FREEZE)
    deployment_id = world.engine().create(request(), principal=ADMIN, override_freeze="hotfix")
    assert world.deployment(deployment_id).phase == Phase.AWAITING_APPROVAL.value
    world.engine().approve(deployment_id, actor="qa@example.com", principal=DEPLOYER)
    assert world.deployment(deployment_id).phase == Phase.PROGRESSING.value
    assert Event.APPROVE.value in [(e.data or {}).get("event") for e in world.events(deployment_id)]


def test_a_waiting_deploy_ends_when_the_deployment_is_withdrawn(approvals: World) -> None:
    deployer = approvals.engine()
    deployment_id = deployer.create(request())

    class AbortingClock(FakeClock):
        def sleep(self, seconds: float) -> None:
            super().sleep(seconds)
            approvals.engine().abort(deployment_id, actor="ops")

    deployer.clock = AbortingClock(approvals.clock.now())
    assert deployer.run(deployment_id, wait_for_approval=True) is Phase.ABORTED
    assert approvals.untouched()
    assert approvals.deployment(deployment_id).lease_owner is None


def test_an_override_where_no_freeze_can_hold_the_deployment_back_is_bad_usage(approvals: World) -> None:
    engine = approvals.engine()
    for release in (1, 2):  # the first is deployed directly; the second stops at its indefinite pause
        deployment_id = engine.create(request(release))
        engine.approve(deployment_id, actor="admin@example.com")
        engine.run(deployment_id)
    assert approvals.deployment(deployment_id).phase == Phase.PAUSED.value
    with pytest.raises(
        ConfigError, match="a freeze window only holds back a deployment before it starts"
    ) as bad:
        engine.approve(deployment_id, actor="admin@example.com", principal=ADMIN, override_freeze="why")
    assert bad.value.exit_code == 2


FOUR_EYES = APPROVAL + "  preventSelfApproval: true\n"


def user(world: World, email: str, role: Role) -> Principal:
    """A user row in the world's store, and the principal its token would give."""
    from orchestrator.store import identity

    with world.sessions.begin() as session:
        row = identity.create_user(session, email, role)
        return Principal(email=email, role=role, user_id=row.id)


def test_with_four_eyes_whoever_deployed_may_not_approve_it_and_another_approver_may(tmp_path: Path) -> None:
    world = World(tmp_path, FOUR_EYES)
    alice, qa = user(world, "alice@example.com", Role.ADMIN), user(world, "qa@example.com", Role.DEPLOYER)
    deployment_id = world.engine().create(
        request(actor=alice.email).model_copy(update={"user_id": alice.user_id})
    )
    with pytest.raises(
        PermissionDeniedError,
        match="alice@example.com asked for this deployment and may not approve it "
        r"\(local's approval.preventSelfApproval\): another approver must",
    ):
        world.engine().approve(deployment_id, actor=alice.email, principal=alice)
    # The local login of a store without users cannot be told from whoever deployed: it may not approve.
    with pytest.raises(PermissionDeniedError, match="approving needs a user's token"):
        world.engine().approve(deployment_id, actor="local", principal=BOOTSTRAP)
    assert world.deployment(deployment_id).phase == Phase.AWAITING_APPROVAL.value
    assert world.untouched()
    assert [e.type for e in world.events(deployment_id)].count("phase") == 1  # nothing recorded

    approver = world.engine()
    assert approver.approve(deployment_id, actor=qa.email, principal=qa).startswith(
        "approved by qa@example.com"
    )
    assert approver.run(deployment_id) is Phase.SUCCEEDED


def test_without_four_eyes_whoever_deployed_may_approve_it(approvals: World) -> None:
    alice = user(approvals, "alice@example.com", Role.ADMIN)
    deployment_id = approvals.engine().create(
        request(actor=alice.email).model_copy(update={"user_id": alice.user_id})
    )
    approvals.engine().approve(deployment_id, actor=alice.email, principal=alice)
    assert approvals.deployment(deployment_id).phase == Phase.PROGRESSING.value


def test_a_deploy_of_an_older_commit_keeps_four_eyes_from_either_side() -> None:
    from orchestrator.config.environment import ApprovalPolicy
    from orchestrator.rollout.policy import under_todays_rules

    project = Project(REPO)
    today = project.environment("prod")
    at_commit = today.model_copy(
        update={"approval": ApprovalPolicy(required=True, prevent_self_approval=True)}
    )
    assert under_todays_rules(at_commit, today).approval.prevent_self_approval
    assert under_todays_rules(today, at_commit).approval.prevent_self_approval
