"""The rollout engine: drives a deployment's frozen plan through the state machine of `store/transitions.py`.

Durability: a deployment's `current_step` is the index of the next step of its plan. A step's completion —
the new `current_step`, every cluster's weights, and the audit event — is one transaction, made after the
step's actions took effect in the clusters. A process killed anywhere resumes at `current_step`; the actions
are idempotent (they write only what differs from live state), so the interrupted step runs again without
applying anything twice, and its completion is recorded exactly once.

One engine drives a deployment at a time: it holds the deployment's lease (`lease.py`) while it drives.
Other processes steer a running rollout through the database only (`control.py`: approve, pause, resume,
abort); the driving engine reads the phase and the control state before every step and while it waits.

Every failure — a gate, a deadline, an unreachable cluster, an exception in a router or a workload, an
abort — rolls back every cluster the rollout touched (those of the waves reached). When a rollback itself
fails, the deployment is Failed with each cluster's weights as read back from it, and a later `abort` or
`retry` finishes the rollback.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, Protocol, cast

from sqlalchemy import select
from sqlalchemy.orm import Session, lazyload, sessionmaker

from orchestrator.build.reference import parse_reference
from orchestrator.config import Environment, Project
from orchestrator.config.pipeline import Pipeline, RollingStrategy, Strategy
from orchestrator.errors import ConfigError, OrchestratorError
from orchestrator.identity.principal import Principal
from orchestrator.logs import carried, get_logger, log_context
from orchestrator.render.engine import Renderer
from orchestrator.render.manifests import RenderedSet, environment_hash
from orchestrator.rollout import control
from orchestrator.rollout.actions import ESSENTIAL, Completed, StepFailedError, handler_for
from orchestrator.rollout.control import (
    ControlRequest,
    ControlState,
    PauseReason,
    PullRequestState,
    StopRequest,
    clear_stop,
)
from orchestrator.rollout.desired import Change, Committed, DesiredState
from orchestrator.rollout.frozen import FrozenPlan
from orchestrator.rollout.gates import AnalysisGate, GateFactory, GateResult, default_gates, validate_analysis
from orchestrator.rollout.hooks import run_pre_rollout
from orchestrator.rollout.lease import (
    Lease,
    LeaseHeldError,
    LeaseLostError,
    LeaseSurrenderedError,
    live_holder,
    new_owner,
)
from orchestrator.rollout.plan import Analyze, Pause, PlannedStep, Promote
from orchestrator.rollout.policy import (
    FreezeOverride,
    check_freeze,
    check_not_own,
    overridden_windows,
    under_todays_rules,
)
from orchestrator.rollout.request import DeployRequest
from orchestrator.rollout.workload import ClusterWorkload
from orchestrator.rollout.workloads import Connector, Workload, WorkloadFactory, kube_workloads
from orchestrator.store import leases, progress
from orchestrator.store import repository as repo
from orchestrator.store.db import engine_of
from orchestrator.store.leases import LeaseHolder
from orchestrator.store.models import (
    ACTIVE_PHASES,
    TERMINAL_PHASES,
    ClusterDeployment,
    Deployment,
    DeploymentEvent,
    Phase,
    Release,
)
from orchestrator.store.transitions import Event, allows, transition

__all__ = ["DeployRequest", "Prepared", "RolloutEngine", "RolloutError", "StepFailedError"]

log = get_logger(__name__)

Reporter = Callable[[dict[str, Any]], None]
ABORT_WAIT_SECONDS = 60.0  # how long `abort` waits for a live driver to finish rolling back


class Clock(Protocol):
    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class RolloutError(OrchestratorError):
    pass


PROMOTION_IS_FINAL = (
    "a promotion is finished, not undone: `orchestrator rollback` restores the release before it"
)


class AbortDeclinedError(RolloutError):
    """The abort came too late: the rollout's final promotion had begun, so it finished (Succeeded)."""


@dataclass(frozen=True)
class _StepState:
    phase: Phase
    current_step: int
    control: ControlState
    finished_clusters: frozenset[str]
    step_started_at: float | None  # when the current step was first started (a resumed step keeps it)


@dataclass
class _Run:
    """What one run of one deployment works with."""

    deployment_id: uuid.UUID
    steps: list[PlannedStep]
    workloads: dict[str, Workload]
    unreachable: dict[str, str]  # cluster -> why it has no workload (connection failed, cluster removed)
    lease: Lease
    background_step: Analyze | None
    state: _StepState | None = None


class _Background:
    """A background analysis: a thread running the gate until told to stop or until it fails."""

    def __init__(self, wave: int, gate: Callable[[threading.Event], GateResult]) -> None:
        self.wave = wave
        self.failure: str | None = None
        self._gate = gate
        self._stop_event = threading.Event()
        self._thread = threading.Thread(
            target=carried(self._run), name=f"background-analysis-{wave}", daemon=True
        )

    @classmethod
    def start(cls, wave: int, gate: Callable[[threading.Event], GateResult]) -> _Background:
        background = cls(wave, gate)
        background._thread.start()
        return background

    def _run(self) -> None:
        try:
            result = self._gate(self._stop_event)
            if not result.passed and not self._stop_event.is_set():
                self.failure = result.message
        except OrchestratorError as exc:
            self.failure = str(exc)

    def stop(self) -> None:
        self._stop_event.set()
        self._thread.join(timeout=30)


def _background_analysis(strategy: Strategy) -> Analyze | None:
    if strategy.canary is not None and strategy.canary.analysis is not None:
        return Analyze(strategy.canary.analysis, background=True)
    return None


def _touched(steps: list[PlannedStep], current_step: int) -> list[str]:
    """Clusters of every step reached (the one in progress included), in plan order."""
    seen: dict[str, None] = {}
    for step in steps[: current_step + 1]:
        for cluster in step.clusters:
            seen.setdefault(cluster, None)
    return list(seen)


class RolloutEngine:
    def __init__(
        self,
        project: Project,
        sessions: sessionmaker[Session],
        *,
        connect: Connector | None = None,
        workloads: WorkloadFactory | None = None,
        clock: Clock | None = None,
        gates: GateFactory = default_gates,
        desired: DesiredState,
        report: Reporter | None = None,
        poll_interval: float = 0.5,
        owner: str | None = None,
        lease_seconds: float = 30.0,
        heartbeat_seconds: float = 5.0,
        lease_thread: bool = True,
    ) -> None:
        if workloads is None:
            if connect is None:
                raise TypeError("RolloutEngine needs connect= or workloads=")
            workloads = kube_workloads(connect)
        self.project = project
        self.desired = desired
        self.sessions = sessions
        self.database = engine_of(sessions)  # the per-step statements run on Core connections
        self.workload_factory = workloads
        self.clock = clock or SystemClock()
        self.gates = gates
        self.report = report or (lambda _event: None)
        self.poll_interval = poll_interval
        self.owner = owner or new_owner()
        self.lease_seconds = lease_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.lease_thread = lease_thread
        self.analysis: AnalysisGate | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._background: _Background | None = None
        self._finished: set[str] | None = None  # clusters done in the running deployment
        self._started: dict[int, float] = {}  # when each pause/analysis step first started
        self._run_state: _Run | None = None
        self._lease: Lease | None = None  # the lease of the run in progress
        self._handing_back = False

    # --- creating -----------------------------------------------------------------------------------------

    @cached_property
    def renderer(self) -> Renderer:
        # Only creating a deployment renders (a run drives its frozen plan), so engines that approve,
        # resume or abort never compile a template.
        return Renderer(self.project)

    def render(self, request: DeployRequest) -> list[RenderedSet]:
        pipeline = self.project.pipeline(request.service)
        environment = self.project.environment(request.environment)
        return self.renderer.render_environment(
            pipeline,
            environment,
            overrides=request.overrides,
            image=request.image,
            digest=request.digest,
            built_repository=request.built_repository,
        )

    def create(
        self,
        request: DeployRequest,
        *,
        principal: Principal | None = None,
        override_freeze: str | None = None,
        prepared: Prepared | None = None,
        leased: bool = True,
        today: Environment | None = None,
    ) -> uuid.UUID:
        """Check, render (validating everything before any cluster is touched), freeze the plan, and record
        the release and the deployment: started and leased to this engine, or AwaitingApproval (no lease,
        nothing touched) when the environment requires an approval. A promotion or a rollback brings its
        sets `prepared` (rendered at the release's commit, or read back from an earlier GitOps commit) and
        rolls out the release its request names. Bad configuration raises ConfigError; a freeze window in
        force (without an admin's override: `principal` and its `override_freeze` reason) or a rollout
        already in progress OrchestratorError: in every case nothing is recorded.

        `leased=False` records a started deployment with no lease, for one handed to a job queue: the worker
        that runs it, in another process, takes the lease then (with one, it would wait for this lease to
        expire).

        `today`: the checkout's environment, when this engine's project is another commit's tree (`deploy
        --commit`): its freeze windows and approval hold as well as the commit's (`under_todays_rules`)."""
        environment = self.project.environment(request.environment)
        if today is not None:
            environment = under_todays_rules(environment, today)
        freeze = check_freeze(
            environment,
            principal,
            override_freeze,
            self._moment(),
            operation=request.kind.value,
            actor=request.actor,
        )
        if prepared is None:
            pipeline = self.project.pipeline(request.service)
            sets = self.render(request)
            validate_analysis(self.project, pipeline)
        else:
            pipeline, sets = prepared.pipeline, list(prepared.sets)
        strategy = Strategy(rolling=RollingStrategy()) if request.strategy == "rolling" else pipeline.strategy
        waves = [[c.name for c in wave] for wave in environment.rollout_waves()]
        plan = FrozenPlan.freeze(pipeline, strategy, waves, sets)
        return self._record(request, plan, environment, freeze=freeze, leased=leased)

    def _record(
        self,
        request: DeployRequest,
        plan: FrozenPlan,
        environment: Environment,
        *,
        freeze: FreezeOverride | None = None,
        leased: bool = True,
    ) -> uuid.UUID:
        sets = list(plan.rendered().values())
        image = sets[0].image
        tag, digest = _tag_and_digest(image)
        with self.sessions.begin() as session:
            holder = repo.latest_deployment(
                session, request.service, request.environment, phases=ACTIVE_PHASES
            )
            if holder is not None:
                raise repo.DeploymentConflictError(
                    f"{request.service} in {request.environment} is already being rolled out by deployment "
                    f"{holder.id} ({holder.phase}, step {holder.current_step}); nothing was recorded. "
                    f"Wait for it, or `orchestrator abort {str(holder.id)[:8]}`"
                )
            if request.release_id is not None:  # promote, rollback: a recorded release, unchanged
                release = repo.get_release(session, request.release_id)
                _same_release(release, request, sets)
            else:
                release = repo.get_or_create_release(
                    session,
                    service=request.service,
                    git_commit=request.git_commit,
                    image_repository=_repository_of(image),
                    image_digest=request.digest or digest,
                    image_tag=None if (request.digest or digest) else tag,
                    manifest_hash=environment_hash(sets),
                    created_by=request.actor,
                    committed_at=request.committed_at,
                )
            placements = [
                repo.ClusterPlacement(c.name, c.cloud, c.region, wave)
                for wave, clusters in enumerate(environment.rollout_waves())
                for c in clusters
                if c.name in plan.rendered()
            ]
            deployment = repo.create_deployment(
                session,
                release=release,
                environment=request.environment,
                strategy=plan.the_strategy().name,
                clusters=placements,
                actor=request.actor,
                user_id=request.user_id,
                config=request.to_record(),
                kind=request.kind,
                undoes=request.undoes,
            )
            deployment.plan = plan.to_record()
            deployment.control = ControlState().to_record()
            if freeze is not None:
                repo.append_event(
                    session, deployment, "override", freeze.message, data=freeze.to_data(), actor=freeze.actor
                )
            # Started (or set waiting for its approval) in the same transaction: a second deploy racing this
            # one loses at the unique index, and its transaction — release, deployment and all — is rolled
            # back, leaving nothing behind.
            if environment.approval.required:
                session.flush()
                approvers = ", ".join(environment.approval.approvers) or "nobody"
                repo.set_phase(
                    session,
                    deployment,
                    Phase.AWAITING_APPROVAL,
                    event=Event.AWAIT_APPROVAL,
                    actor=request.actor,
                    message=(
                        f"waiting for an approval ({environment.name}'s approval.approvers: {approvers}): "
                        f"`orchestrator approve {str(deployment.id)[:8]}`"
                    ),
                )
                # No lease: nobody drives it until it is approved (a waiting `deploy` takes one to wait).
                return deployment.id
            repo.set_phase(session, deployment, Phase.PROGRESSING, event=Event.START, actor=request.actor)
            session.flush()
            if not leased:
                return deployment.id
            leases.take(
                session.connection(),
                deployment.id,
                self.owner,
                now=self._moment(),
                until=self._moment(self.lease_seconds),
            )
            return deployment.id

    def _moment(self, offset: float = 0.0) -> datetime:
        return datetime.fromtimestamp(self.clock.now() + offset, UTC)

    # --- loading ------------------------------------------------------------------------------------------

    def _load(self, deployment: Deployment) -> tuple[DeployRequest, FrozenPlan]:
        request = DeployRequest.from_record(deployment.config, deployment=deployment.id)
        return request, FrozenPlan.from_record(deployment.plan, deployment=deployment.id)

    def _workloads(
        self, request: DeployRequest, plan: FrozenPlan, only: Iterable[str] | None = None
    ) -> tuple[dict[str, Workload], dict[str, str]]:
        """A workload for each cluster of the plan that can be reached; why not, for the others."""
        sets = plan.rendered()
        names = list(only) if only is not None else list(sets)
        workloads: dict[str, Workload] = {}
        unreachable: dict[str, str] = {}
        try:
            environment: Environment | None = self.project.environment(request.environment)
        except OrchestratorError as exc:
            environment = None
            unreachable = {name: str(exc) for name in names}
        if environment is None:
            return workloads, unreachable
        for name in names:
            try:
                workloads[name] = self.workload_factory(environment.cluster(name), sets[name])
            except Exception as exc:
                unreachable[name] = _describe(exc, name)
        return workloads, unreachable

    # --- running ------------------------------------------------------------------------------------------

    def driver(self, deployment_id: uuid.UUID) -> LeaseHolder | None:
        """The engine driving the deployment now (a live lease), if any."""
        return live_holder(self.database, deployment_id, self.clock.now())

    def run(self, deployment_id: uuid.UUID, *, wait_for_approval: bool = False) -> Phase:
        """Drive the deployment from its current step until it finishes, pauses, or is stopped.

        A deployment AwaitingApproval is not driven: with `wait_for_approval` this engine holds its lease
        and waits until an approver starts it (then drives it) or it is aborted; without, it returns at
        once. LeaseHeldError when another engine drives it (its lease is live)."""
        lease = Lease(
            self.database,
            deployment_id,
            self.owner,
            self.clock.now,
            seconds=self.lease_seconds,
            heartbeat=self.heartbeat_seconds,
            thread=self.lease_thread,
        )
        if self._handing_back:
            lease.surrender()  # told to stop before this run began: it stops at its first check
        lease.take()
        self._lease = lease
        try:
            with log_context(deployment=str(deployment_id)):
                if wait_for_approval:
                    self._await_approval(deployment_id, lease)
                return self._run(deployment_id, lease)
        except LeaseSurrenderedError:
            log.info("lease_handed_back", deployment=str(deployment_id))
            return self._phase(deployment_id)
        except LeaseLostError as exc:
            log.warning("lease_lost", deployment=str(deployment_id), reason=str(exc))
            return self._phase(deployment_id)
        finally:
            self._stop_background()
            self._run_state = None
            self._lease = None
            if not lease.lost:
                lease.release()

    def hand_back(self) -> None:
        """Stop driving at the next step boundary (or the next poll of a wait), give the lease back and
        leave the deployment as it stands, for another driver to resume: what a worker told to stop does.
        Safe to call from another thread; `run` then returns the deployment's phase."""
        self._handing_back = True
        lease = self._lease
        if lease is not None:
            lease.surrender()

    def _run(self, deployment_id: uuid.UUID, lease: Lease) -> Phase:
        with self.sessions.begin() as session:
            deployment = repo.get_deployment(session, deployment_id)
            phase = Phase(deployment.phase)
            stop = ControlState.of(deployment.control).stop
            owed = stop is not None and allows(phase, _stop_event(stop))
            waiting = (Phase.PAUSED, Phase.AWAITING_APPROVAL, Phase.AWAITING_MERGE)
            if not owed and (phase in TERMINAL_PHASES or phase in waiting):
                return phase
            request, plan = self._load(deployment)
            if phase is Phase.PENDING and not owed:
                repo.set_phase(
                    session, deployment, Phase.PROGRESSING, event=Event.START, actor=deployment.actor
                )
            index = deployment.current_step
            uncommitted = deployment.gitops_commit is None and not owed
            change = self._change(session, deployment, request, plan) if uncommitted else None
            merged = ControlState.of(deployment.control).pull_request
        if change is not None and merged is not None and merged.merge_commit is not None:
            # Pull-request mode, merged: the hooks were asked before the pull request was opened.
            adopted = self._adopt_merge(deployment_id, request, plan, merged)
            if adopted is None:
                return Phase.FAILED
            plan = adopted
        elif change is not None:
            refused = self._pre_rollout(plan, change)
            if refused is not None:
                return self._fail_untouched(deployment_id, Event.HOOK_FAILED, "PreRolloutHookFailed", refused)
            if self.project.environment(request.environment).gitops.mode == "pull-request":
                proposed = self._propose(deployment_id, request, plan, change)
                if proposed is None or isinstance(proposed, Phase):
                    return proposed or Phase.FAILED
                plan = proposed
            else:
                committed = self._commit(deployment_id, request, plan, change)
                if committed is None:
                    return Phase.FAILED
                plan = committed
        steps = plan.steps()
        # A rollback owed only needs the clusters it touched; a rollout needs every cluster.
        workloads, unreachable = self._workloads(request, plan, _touched(steps, index) if owed else None)
        environment = self.project.environment(request.environment) if not unreachable else None
        if environment is not None and not owed:
            self.analysis = self.gates(plan.the_pipeline(), environment)
            if any(isinstance(step.action, Analyze) for step in steps):
                self.report({"type": "gates", "source": self.analysis.source()})
        run = _Run(
            deployment_id, steps, workloads, unreachable, lease, _background_analysis(plan.the_strategy())
        )
        self._run_state = run
        self._finished, self._started = None, {}  # learnt afresh for this deployment
        late = stop is not None and phase is Phase.PROGRESSING and self._past_promotion(run, index, stop)
        if stop is not None and owed and not late:
            return self._finish_stop(run, index, stop)
        if unreachable:
            return self._fail(run, "; ".join(unreachable.values()), index, None)
        return self._drive(run)

    def _await_approval(self, deployment_id: uuid.UUID, lease: Lease) -> None:
        """Wait, holding the lease, while the deployment awaits its approval: the approval is then picked up
        by this process (`approve` sees a live driver and leaves the rollout to it). Polls the store."""
        reported = False
        while True:
            lease.beat_if_due()
            lease.check()
            if self._phase(deployment_id) is not Phase.AWAITING_APPROVAL:
                return
            if not reported:
                with self.sessions() as session:
                    deployment = repo.get_deployment(session, deployment_id)
                    self.report(
                        {
                            "type": "awaiting_approval",
                            "deployment": str(deployment.id),
                            "environment": deployment.environment,
                            "message": deployment.message or "waiting for an approval",
                        }
                    )
                reported = True
            self.clock.sleep(self.poll_interval)

    # --- desired state ------------------------------------------------------------------------------------

    def _change(
        self, session: Session, deployment: Deployment, request: DeployRequest, plan: FrozenPlan
    ) -> Change:
        sets = list(plan.rendered().values())
        # What the message says a promotion came from, or which commits a rollback restores and reverts.
        source = session.get(Deployment, request.source_deployment) if request.source_deployment else None
        undone = session.get(Deployment, request.undoes) if request.undoes else None
        return Change(
            deployment_id=deployment.id,
            kind=deployment.kind,
            service=deployment.service,
            environment=deployment.environment,
            release_id=deployment.release_id,
            source_commit=request.git_commit,
            image=sets[0].image,
            image_digest=deployment.release.image_digest,
            actor=deployment.actor,
            sets=sets,
            undoes=deployment.undoes_id,
            source_environment=source.environment if source is not None else None,
            restores=source.gitops_commit if source is not None and request.undoes else None,
            reverts=undone.gitops_commit if undone is not None else None,
        )

    def _pre_rollout(self, plan: FrozenPlan, change: Change) -> str | None:
        """Ask the pipeline's pre-rollout hooks (as frozen with the plan); why not, when one refuses."""
        hooks = plan.the_pipeline().hooks.pre_rollout
        if not hooks:
            return None
        self.report({"type": "hooks", "stage": "preRollout", "hooks": [h.name for h in hooks]})
        fields = {
            "deployment": str(change.deployment_id),
            "kind": change.kind,
            "service": change.service,
            "environment": change.environment,
            "release": str(change.release_id),
            "commit": change.source_commit,
            "image": change.image,
            "imageDigest": change.image_digest,
            "actor": change.actor,
        }
        return run_pre_rollout(hooks, fields, sleep=self.clock.sleep)

    def _fail_untouched(self, deployment_id: uuid.UUID, event: Event, code: str, reason: str) -> Phase:
        """Failed before any cluster was touched (a hook refused, the commit could not be made)."""
        log.info("rollout_refused", deployment=str(deployment_id), reason=reason, on=event.value)
        with self.sessions.begin() as session:
            deployment = repo.get_deployment(session, deployment_id)
            repo.set_phase(
                session, deployment, Phase.FAILED, event=event, actor=deployment.actor, message=reason
            )
            deployment.reason = code
        self.report({"type": "finished", "phase": Phase.FAILED.value, "reason": reason, "message": reason})
        return Phase.FAILED

    def _commit(
        self, deployment_id: uuid.UUID, request: DeployRequest, plan: FrozenPlan, change: Change
    ) -> FrozenPlan | None:
        """Commit the deployment's desired state and continue with what the commit holds; on failure the
        deployment is Failed with the reason and nothing was applied (None)."""
        self.report({"type": "gitops", "state": "committing"})
        try:
            committed = self.desired.commit(self.project.environment(request.environment), change)
        except OrchestratorError as exc:
            reason = f"the desired state was not committed, nothing was applied: {exc}"
            self._fail_untouched(deployment_id, Event.GITOPS_FAILED, "GitOpsFailed", reason)
            return None
        return self._record_commit(deployment_id, plan, committed)

    def _propose(
        self, deployment_id: uuid.UUID, request: DeployRequest, plan: FrozenPlan, change: Change
    ) -> FrozenPlan | Phase | None:
        """Pull-request mode: push the desired state as a branch and open a pull request of it, then wait
        (AwaitingMerge, nothing touched) for its merge. A branch that already holds exactly this state needs
        no pull request: the rollout goes on from it (a FrozenPlan). None: it could not be proposed, and the
        deployment is Failed with nothing applied."""
        self.report({"type": "gitops", "state": "proposing"})
        environment = self.project.environment(request.environment)
        try:
            proposed = self.desired.propose(environment, change)
        except OrchestratorError as exc:
            reason = f"the desired state was not proposed, nothing was applied: {exc}"
            self._fail_untouched(deployment_id, Event.GITOPS_FAILED, "GitOpsFailed", reason)
            return None
        if isinstance(proposed, Committed):
            return self._record_commit(deployment_id, plan, proposed)
        pull = proposed.pull_request
        state = PullRequestState(
            repository=pull.repository,
            number=pull.number,
            url=pull.url,
            head=pull.head,
            base=pull.base,
            head_sha=pull.head_sha,
        )
        message = f"waiting for pull request #{pull.number} to be merged: {pull.url}"
        with self.sessions.begin() as session:
            deployment = repo.get_deployment(session, deployment_id)
            control_state = ControlState.of(deployment.control)
            control_state.pull_request = state
            deployment.control = control_state.to_record()
            repo.append_event(
                session,
                deployment,
                "pull_request",
                f"pull request #{pull.number} opened: {pull.head} onto {pull.base} ({pull.url})",
                data={**state.model_dump(mode="json"), "files": proposed.files},
            )
            repo.set_phase(
                session,
                deployment,
                Phase.AWAITING_MERGE,
                event=Event.AWAIT_MERGE,
                actor=deployment.actor,
                message=message,
            )
        self.report(
            {
                "type": "gitops",
                "state": "pull_request",
                "url": pull.url,
                "number": pull.number,
                "message": message,
            }
        )
        return Phase.AWAITING_MERGE

    def _adopt_merge(
        self, deployment_id: uuid.UUID, request: DeployRequest, plan: FrozenPlan, pull: PullRequestState
    ) -> FrozenPlan | None:
        """Continue with what the pull request's merge commit holds (read back and validated, as a commit
        of ours is); None when it cannot be read: the deployment is Failed with nothing applied."""
        assert pull.merge_commit is not None
        environment = self.project.environment(request.environment)
        try:
            sets = self.desired.read(environment, pull.merge_commit, list(plan.rendered().values()))
        except OrchestratorError as exc:
            reason = (
                f"the merge commit {pull.merge_commit[:12]} of pull request #{pull.number} cannot be rolled "
                f"out, nothing was applied: {exc}"
            )
            self._fail_untouched(deployment_id, Event.GITOPS_FAILED, "GitOpsFailed", reason)
            return None
        return self._record_commit(deployment_id, plan, Committed(pull.merge_commit, True, sets), merged=pull)

    def _record_commit(
        self,
        deployment_id: uuid.UUID,
        plan: FrozenPlan,
        committed: Committed,
        *,
        merged: PullRequestState | None = None,
    ) -> FrozenPlan:
        """The desired state is in git: the plan goes on with what the commit holds."""
        frozen = plan.with_sets(committed.sets)
        if merged is not None:
            kind = "committed"
            text = f"desired state merged as {committed.sha[:12]} (pull request #{merged.number})"
        elif committed.created:
            kind, text = "committed", f"desired state committed as {committed.sha[:12]}"
        else:
            kind, text = "unchanged", f"desired state unchanged: already held by {committed.sha[:12]}"
        data: dict[str, Any] = {"commit": committed.sha, "created": committed.created}
        if merged is not None:
            data["pull_request"] = merged.number
        with self.sessions.begin() as session:
            deployment = repo.get_deployment(session, deployment_id)
            deployment.gitops_commit = committed.sha
            deployment.plan = frozen.to_record()
            repo.append_event(session, deployment, kind, message=text, data=data)
        self.report(
            {"type": "gitops", "state": "committed", "commit": committed.sha, "created": committed.created}
        )
        return frozen

    def _drive(self, run: _Run) -> Phase:
        while True:
            run.lease.check()
            state = self._state(run)
            run.state = state
            phase, index = state.phase, state.current_step
            if state.control.stop is not None:
                if phase is not Phase.PROGRESSING or not self._past_promotion(run, index, state.control.stop):
                    return self._finish_stop(run, index, state.control.stop)
                self._decline_abort(run, index, state.control.stop)
                continue
            if phase is not Phase.PROGRESSING:
                return phase
            if index >= len(run.steps):
                return self._succeed(run)
            step = run.steps[index]
            if state.control.full_promotion and not isinstance(step.action, ESSENTIAL):
                self._complete(
                    run, step, Completed(message=f"skipped (approve --full): {step.label}", skipped=True)
                )
                continue
            self.report(
                {"type": "step", "step": step.index, "label": step.label, "clusters": [*step.clusters]}
            )
            handler = handler_for(step)
            targets = [run.workloads[c] for c in step.clusters]
            if handler.skips_finished:
                targets = [w for w in targets if w.rendered.cluster not in state.finished_clusters]
                if not targets:
                    self._complete(run, step, Completed(message=f"{step.label}: no canary here"))
                    continue
            try:
                self._follow_background(run, step, state)
                outcome = handler.run(self, step, targets)
            except LeaseLostError:
                raise
            except (StepFailedError, OrchestratorError) as exc:
                return self._fail(run, str(exc), index, step)
            except Exception as exc:
                log.exception("step_crashed", step=step.index)
                return self._fail(run, f"step {step.index} crashed: {type(exc).__name__}: {exc}", index, step)
            if isinstance(outcome, Completed):
                self._complete(run, step, outcome, [w.rendered.cluster for w in targets])

    # --- what handlers ask of the engine (actions.Driver) ---------------------------------------------------

    def approved(self, step: PlannedStep) -> bool:
        state = self._run_state.state if self._run_state is not None else None
        return state is not None and state.control.approved_step == step.index

    def wait(self, step: PlannedStep, seconds: float) -> bool:
        run = self._run_state
        assert run is not None and run.state is not None
        started = run.state.step_started_at if run.state.step_started_at is not None else self.clock.now()
        until = started + seconds
        self.report({"type": "waiting", "until": until})
        while True:
            run.lease.beat_if_due()
            run.lease.check()
            state = self._state(run)
            run.state = state
            stopped = state.phase is not Phase.PROGRESSING or state.control.stop is not None
            if stopped or state.current_step != step.index:
                return False
            if state.control.full_promotion or state.control.approved_step == step.index:
                return True
            if self._background_failure():
                return True  # the next step raises it
            remaining = until - self.clock.now()
            if remaining <= 0:
                return True
            self.clock.sleep(min(self.poll_interval, remaining))

    def hold(self, step: PlannedStep, reason: PauseReason, why: str) -> None:
        run = self._run_state
        assert run is not None
        with self.sessions.begin() as session:
            deployment = repo.get_deployment(session, run.deployment_id)
            if Phase(deployment.phase) is not Phase.PROGRESSING or ControlState.of(deployment.control).stop:
                return  # a control request landed first; the loop reads it
            control.pause_for(session, deployment, reason, step, now=self.clock.now(), why=why)
        self.report({"type": "paused", "step": step.index, "reason": reason.value})

    def gate(self, step: PlannedStep, targets: list[Workload]) -> GateResult | None:
        run = self._run_state
        assert run is not None and isinstance(step.action, Analyze)
        if self.analysis is None:
            raise RolloutError("this rollout has an analysis step but no analysis provider is configured")
        deployment_id = run.deployment_id
        result = self.analysis(
            step.action,
            cast(list[ClusterWorkload], targets),  # gates read what a ClusterWorkload has (client, names)
            lambda cluster, message, data: self._measurement(deployment_id, step, cluster, message, data),
            lambda: self._stopping(deployment_id),
        )
        if self._stopping(deployment_id):
            return None  # aborted or paused meanwhile: the loop decides
        return result

    def in_parallel(self, targets: list[Workload], operation: Callable[[Workload], int]) -> dict[str, int]:
        def call(workload: Workload) -> tuple[str, int]:
            return workload.rendered.cluster, operation(workload)

        if not targets:
            return {}
        # One pool for the engine's life (threads per step would cost more than the step); the first
        # cluster is served on this thread while the pool serves the others.
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="rollout")
        futures = [self._pool.submit(carried(call), w) for w in targets[1:]]
        calls: list[Callable[[], tuple[str, int]]] = [lambda: call(targets[0])]
        calls += [future.result for future in futures]
        results: dict[str, int] = {}
        errors: list[str] = []
        for pending, workload in zip(calls, targets, strict=True):
            try:
                cluster, writes = pending()
                results[cluster] = writes
            except Exception as exc:
                errors.append(_describe(exc, workload.rendered.cluster))
        if errors:
            raise StepFailedError("; ".join(errors))
        return results

    # --- background analysis --------------------------------------------------------------------------

    def _follow_background(self, run: _Run, step: PlannedStep, state: _StepState) -> None:
        """Keep the strategy's background analysis running beside the current wave's canary steps.

        It starts once a wave's canaries are up (the step after StartCanary; again after a resume), ends
        with the wave, and a failure it found fails the step about to run.
        """
        running = self._background
        if running is not None and running.failure:
            raise StepFailedError(f"background analysis failed: {running.failure}")
        in_wave = step.wave >= 0 and not isinstance(step.action, ESSENTIAL)
        if running is not None and (not in_wave or running.wave != step.wave):
            self._stop_background()
        gate, background_step = self.analysis, run.background_step
        if background_step is None or not in_wave or self._background is not None or gate is None:
            return
        targets = [run.workloads[c] for c in step.clusters if c not in state.finished_clusters]
        if targets:
            deployment_id = run.deployment_id
            self._background = _Background.start(
                step.wave,
                lambda stop: gate(
                    background_step,
                    cast(list[ClusterWorkload], targets),
                    lambda cluster, message, data: self._measurement(
                        deployment_id, step, cluster, message, data
                    ),
                    lambda: stop.is_set() or self._stopping(deployment_id),
                ),
            )

    def _stop_background(self) -> None:
        if self._background is not None:
            self._background.stop()
            self._background = None

    def _background_failure(self) -> str | None:
        return self._background.failure if self._background is not None else None

    # --- recording ----------------------------------------------------------------------------------------

    def _state(self, run: _Run) -> _StepState:
        """Where the deployment stands: one read of plain columns per step (the hot path: Core, no ORM).

        What only this engine changes — which clusters are finished, when a step started — is read once
        per run (a resumed rollout learns it here) and then kept up to date in memory. The start of a
        pause or analysis step is recorded, once: a resumed pause keeps its first start.
        """
        deployment_id = run.deployment_id
        with self.database.begin() as connection:
            now = progress.read_progress(connection, deployment_id)
        if self._finished is None or self._unrecorded_start(now, run.steps) is not None:
            # Not the hot path: learn what is finished, or record a start, in one transaction with a
            # fresh read, so an approval landing meanwhile cannot get a start recorded for a step it ended.
            with self.sessions.begin() as session:
                now = progress.read_progress(session.connection(), deployment_id)
                if self._finished is None:
                    self._finished = set(
                        session.scalars(
                            select(ClusterDeployment.cluster).where(
                                ClusterDeployment.deployment_id == deployment_id,
                                ClusterDeployment.phase == Phase.SUCCEEDED.value,
                            )
                        )
                    )
                step = self._unrecorded_start(now, run.steps)
                if step is not None:
                    self._started[now.current_step] = self._record_start(session, deployment_id, step)
        return _StepState(
            phase=now.phase,
            current_step=now.current_step,
            control=ControlState.of(now.control),
            finished_clusters=frozenset(self._finished),
            step_started_at=self._started.get(now.current_step),
        )

    def _unrecorded_start(self, now: progress.Progress, steps: list[PlannedStep]) -> PlannedStep | None:
        """The current step, when it is a pause or analysis whose start this run has not learnt yet."""
        if now.current_step >= len(steps) or now.phase is not Phase.PROGRESSING:
            return None
        step = steps[now.current_step]
        if not isinstance(step.action, Pause | Analyze) or now.current_step in self._started:
            return None
        return step

    def _record_start(self, session: Session, deployment_id: uuid.UUID, step: PlannedStep) -> float:
        """The step's first start: found in the audit trail (a resumed step), else recorded now."""
        last = session.execute(
            select(DeploymentEvent.type, DeploymentEvent.step, DeploymentEvent.created_at)
            .where(
                DeploymentEvent.deployment_id == deployment_id,
                DeploymentEvent.type.in_(("step_started", "step_completed")),
            )
            .order_by(DeploymentEvent.seq.desc())
            .limit(1)
        ).first()
        if last is not None and last.type == "step_started" and last.step == step.index:
            return last.created_at.timestamp()
        event = repo.append_event(
            session,
            self._deployment(session, deployment_id),
            "step_started",
            step.label,
            step=step.index,
            now=self._moment(),
        )
        return event.created_at.timestamp()

    def _deployment(self, session: Session, deployment_id: uuid.UUID) -> Deployment:
        """The row to update, without the joined release every other read wants."""
        deployment = session.get(Deployment, deployment_id, options=[lazyload(Deployment.release)])
        if deployment is None:
            raise RolloutError(f"deployment {deployment_id} disappeared from the store")
        return deployment

    def _complete(
        self, run: _Run, step: PlannedStep, outcome: Completed, clusters: list[str] | None = None
    ) -> None:
        with self.database.begin() as connection:
            advanced = progress.advance_step(
                connection,
                run.deployment_id,
                step=step.index,
                message=outcome.message or step.label,
                data={"writes": outcome.writes, "skipped": outcome.skipped},
            )
            if not advanced:
                return  # someone (a resumed twin) already moved past it
            for record in outcome.records:
                progress.set_cluster_weights(
                    connection,
                    run.deployment_id,
                    record.names,
                    canary_weight=record.canary_weight,
                    phase=record.phase,
                    message=record.message,
                )
        if self._finished is not None:
            self._finished |= outcome.finished
        event: dict[str, Any] = {
            "type": "step_completed",
            "step": step.index,
            "label": step.label,
            "writes": outcome.writes,
            "clusters": clusters or [],  # empty: every cluster of the step had already finished
            "direct": [*outcome.direct],
        }
        if outcome.weights is not None:
            event["weights"] = outcome.weights
        self.report(event)

    def _measurement(
        self, deployment_id: uuid.UUID, step: PlannedStep, cluster: str, message: str, data: dict[str, Any]
    ) -> None:
        with self.sessions.begin() as session:
            deployment = repo.get_deployment(session, deployment_id)
            repo.append_event(
                session, deployment, "measurement", message, step=step.index, cluster=cluster, data=data
            )
        self.report({**data, "type": "measurement", "cluster": cluster, "message": message})

    def _stopping(self, deployment_id: uuid.UUID) -> bool:
        """Paused, or a rollback owed: an analysis stops measuring."""
        with self.database.begin() as connection:
            now = progress.read_progress(connection, deployment_id)
        return now.phase is not Phase.PROGRESSING or bool(now.control.get("stop"))

    def _phase(self, deployment_id: uuid.UUID) -> Phase:
        with self.database.begin() as connection:
            return progress.read_phase(connection, deployment_id)

    def phase(self, deployment_id: uuid.UUID) -> Phase:
        """Where the deployment stands now (one read)."""
        return self._phase(deployment_id)

    def _current_step(self, deployment_id: uuid.UUID) -> int:
        with self.database.begin() as connection:
            return progress.read_progress(connection, deployment_id).current_step

    # --- endings ------------------------------------------------------------------------------------------

    def _succeed(self, run: _Run) -> Phase:
        with self.sessions.begin() as session:
            deployment = repo.get_deployment(session, run.deployment_id)
            for name in run.workloads:
                repo.upsert_cluster_deployment(
                    session, deployment, name, canary_weight=0, phase=Phase.SUCCEEDED
                )
            repo.set_phase(
                session,
                deployment,
                Phase.SUCCEEDED,
                event=Event.COMPLETED,
                message="rolled out to every cluster",
            )
        self.report({"type": "finished", "phase": Phase.SUCCEEDED.value})
        return Phase.SUCCEEDED

    def _fail(self, run: _Run, reason: str, index: int, step: PlannedStep | None) -> Phase:
        """A failure: the rollback is owed (recorded first, so a killed driver's successor finishes it),
        then every touched cluster goes back on stable."""
        log.info("rollout_failed", deployment=str(run.deployment_id), reason=reason)
        self.report({"type": "failed", "reason": reason})
        promotion = step is not None and isinstance(step.action, Promote)
        stop = StopRequest(
            kind="rollback", reason=reason, step=step.index if step else None, promotion=promotion
        )
        with self.sessions.begin() as session:
            deployment = repo.get_deployment(session, run.deployment_id)
            state = ControlState.of(deployment.control)
            if state.stop is None:  # an abort asked for meanwhile stays an abort
                state.stop = stop
                deployment.control = state.to_record()
            stop = state.stop
        return self._finish_stop(run, index, stop)

    def _past_promotion(self, run: _Run, index: int, stop: StopRequest) -> bool:
        """Whether an abort comes too late: every step is done, or the final promotion has begun — a
        cluster of it already runs the new release as its stable (its driver died mid-promotion). A
        rollback only moves traffic and the canary; it cannot take a promoted stable back, so an abort
        from here would record Aborted over clusters running the new release. Argo Rollouts' rule: once
        fully promoted, abort does nothing. A cluster that cannot be read does not count: with one, the
        abort goes ahead and records what it could not roll back (Failed)."""
        if stop.kind != "abort" or run.unreachable:
            return False
        if index >= len(run.steps):
            return True
        step = run.steps[index]
        if not isinstance(step.action, Promote):
            return False
        finished = self._state(run).finished_clusters  # deployed directly, or recorded promoted
        for name in step.clusters:
            workload = run.workloads.get(name)
            if name in finished or workload is None:
                continue
            try:
                if not workload.needs_canary():
                    return True
            except Exception:
                continue
        return False

    def _decline_abort(self, run: _Run, index: int, stop: StopRequest) -> None:
        """Forget an abort that came too late (`_past_promotion`) and say so: the promotion is finished."""
        where = "every step was done" if index >= len(run.steps) else "the final promotion had begun"
        text = f"abort by {stop.actor or 'unknown'} declined: {where}; {PROMOTION_IS_FINAL}"
        self._record_declined(run.deployment_id, text, stop.actor)

    def _record_declined(self, deployment_id: uuid.UUID, text: str, actor: str | None) -> None:
        """Forget the owed abort and say in the trail, with its actor, why it was declined."""
        with self.sessions.begin() as session:
            deployment = repo.get_deployment(session, deployment_id)
            clear_stop(deployment)
            repo.append_event(session, deployment, "abort_declined", text, actor=actor)
        self.report({"type": "abort_declined", "message": text})

    def _finish_stop(self, run: _Run, index: int, stop: StopRequest) -> Phase:
        self._stop_background()
        result = self._roll_back(
            run.deployment_id,
            run.steps,
            index,
            run.workloads,
            run.unreachable,
            outcome=_stop_event(stop),
            cluster_phase=Phase.ABORTED if stop.kind == "abort" else Phase.ROLLED_BACK,
            reason=stop.reason,
            step=run.steps[stop.step] if stop.step is not None and stop.step < len(run.steps) else None,
            actor=stop.actor,
        )
        phase = result.phase
        self.report(
            {"type": "finished", "phase": phase.value, "reason": stop.reason, "message": result.message}
        )
        return phase

    def _roll_back(
        self,
        deployment_id: uuid.UUID,
        steps: list[PlannedStep],
        index: int,
        workloads: dict[str, Workload],
        unreachable: dict[str, str],
        *,
        outcome: Event,
        cluster_phase: Phase,
        reason: str | None,
        step: PlannedStep | None,
        actor: str | None = None,
    ) -> _RollbackResult:
        """Roll back every touched cluster and record how it ended.

        `outcome` is the event a full rollback records; a rollback that could not finish records
        ROLLBACK_FAILED, and each cluster's weights as read back. The rollback owed is settled either way
        (a later `abort` or `retry` asks for it again).

        Once the final promotion has begun (it failed part-way: `outcome` is PROMOTION_FAILED, or was for an
        earlier attempt), a cluster it promoted runs the new release as its stable, which no rollback takes
        back: such a cluster is recorded as running the new release (Succeeded), and the deployment stays
        Failed — never RolledBack or Aborted over clusters that run the new release. `orchestrator rollback`
        restores the release before it; `retry` rolls this one out again.
        """
        touched = _touched(steps, index)
        done: list[str] = []
        errors: dict[str, str] = {}
        for name in touched:
            workload = workloads.get(name)
            if workload is None:
                errors[name] = f"rollback of cluster {name} failed: {unreachable.get(name, 'not reachable')}"
                continue
            try:
                workload.rollback()
                done.append(name)
            except Exception as exc:
                errors[name] = f"rollback of cluster {name} failed: {_describe(exc, name)}"
        read_back = {name: _read_weight(workloads.get(name)) for name in errors}
        with self.sessions() as session:
            promotion_begun = outcome is Event.PROMOTION_FAILED or _promotion_failed(session, deployment_id)
            # Recorded as running the new release already (deployed directly: no other version ran there;
            # or promoted by a promotion that failed): moving traffic changed nothing there, so they stay so.
            kept = dict(
                session.execute(
                    select(ClusterDeployment.cluster, ClusterDeployment.message).where(
                        ClusterDeployment.deployment_id == deployment_id,
                        ClusterDeployment.phase == Phase.SUCCEEDED.value,
                        ClusterDeployment.cluster.in_(done),
                    )
                ).all()
            )
        promoted = [n for n in done if n not in kept and promotion_begun and _runs_new_release(workloads[n])]
        rolled_back = [n for n in done if n not in promoted and n not in kept]
        parts = [reason] if reason else []
        if rolled_back:
            parts.append(f"rolled back {', '.join(rolled_back)}")
        if promoted:
            parts.append(f"{', '.join(promoted)} run the new release (promoted before the failure)")
        kept_by_why: dict[str, list[str]] = {}
        for name in (n for n in done if n in kept):
            kept_by_why.setdefault(kept[name] or "recorded Succeeded", []).append(name)
        for why, names in sorted(kept_by_why.items()):
            parts.append(f"the new release stays on {', '.join(names)} ({why})")
        if errors:
            parts.append("; ".join(errors.values()))
        message = "; ".join(parts) or "nothing to roll back"
        with self.sessions.begin() as session:
            deployment = repo.get_deployment(session, deployment_id)
            for name in rolled_back:
                repo.upsert_cluster_deployment(
                    session, deployment, name, canary_weight=0, phase=cluster_phase
                )
            for name in promoted:
                repo.upsert_cluster_deployment(
                    session,
                    deployment,
                    name,
                    canary_weight=0,
                    phase=Phase.SUCCEEDED,
                    message="promoted before the promotion failed: runs the new release",
                )
            for name, error in errors.items():
                weight = read_back[name]
                repo.upsert_cluster_deployment(
                    session, deployment, name, canary_weight=weight, phase=Phase.FAILED, message=error
                )
                repo.append_event(
                    session,
                    deployment,
                    "rollback_failed",
                    error,
                    cluster=name,
                    data={"canary_weight": weight},
                    actor=actor,
                )
            if reason:
                deployment.reason = reason
            clear_stop(deployment)
            current = Phase(deployment.phase)
            full = Event.PROMOTION_FAILED if promotion_begun else outcome  # no RolledBack over promoted ones
            event = Event.ROLLBACK_FAILED if errors else full
            if allows(current, event):
                repo.set_phase(
                    session,
                    deployment,
                    transition(current, event).to,
                    event=event,
                    message=message,
                    step=step.index if step else None,
                    actor=actor,
                    data={
                        "rolled_back": rolled_back,
                        "promoted": promoted,
                        "kept": [n for names in kept_by_why.values() for n in names],
                        "failed": sorted(errors),
                        "weights": read_back,
                    },
                )
            else:
                deployment.message = message
            return _RollbackResult(Phase(deployment.phase), message, complete=not errors)

    # --- manual control -----------------------------------------------------------------------------------

    def approve(
        self,
        deployment_id: uuid.UUID,
        *,
        full: bool = False,
        actor: str | None = None,
        principal: Principal | None = None,
        override_freeze: str | None = None,
    ) -> str:
        """End the pause the rollout waits at (with full, skip every remaining step, analyses included), or
        start a deployment AwaitingApproval. Starting one is a rollout beginning, so a freeze window in
        force refuses it (FrozenError) unless the deployment's own override covered that window or an admin
        (`principal`) overrides it now with a reason."""
        request = ControlRequest(Event.APPROVE_FULL if full else Event.APPROVE, actor)
        with self.sessions.begin() as session:
            deployment = repo.get_deployment(session, deployment_id)
            awaiting = Phase(deployment.phase) is Phase.AWAITING_APPROVAL
            (control.check_start if awaiting else control.check)(deployment, request)
            _, plan = self._load(deployment)
            if awaiting:
                environment = self.project.environment(deployment.environment)
                check_not_own(environment, deployment.user_id, principal)
                covered = overridden_windows(repo.events_for(session, deployment.id))
                freeze = check_freeze(
                    environment,
                    principal,
                    override_freeze,
                    self._moment(),
                    operation="approval of deployment " + str(deployment.id)[:8],
                    actor=actor,
                    covered=covered,
                )
                if freeze is not None:
                    repo.append_event(
                        session,
                        deployment,
                        "override",
                        freeze.message,
                        data=freeze.to_data(),
                        actor=freeze.actor,
                    )
            elif override_freeze is not None:
                raise ConfigError(
                    f"--override-freeze: deployment {deployment.id} is {deployment.phase}; a freeze window "
                    "only holds back a deployment before it starts (AwaitingApproval)"
                )
            return control.approve(session, deployment, request, plan.steps())

    def _withdraw(
        self, deployment_id: uuid.UUID, environment: str, pull: PullRequestState, actor: str | None
    ) -> None:
        """Close the pull request of an aborted deployment, so nobody merges what will not roll out. Asked
        once the abort is recorded; a GitHub that cannot be reached is recorded, and the abort stands (a
        merge of it later rolls nothing out: no deployment waits on it)."""
        from orchestrator.github.pulls import PullRequest

        proposal = PullRequest(pull.repository, pull.number, pull.url, pull.head, pull.base, pull.head_sha)
        try:
            self.desired.withdraw(self.project.environment(environment), proposal)
            kind, text = "pull_request_closed", f"pull request #{pull.number} closed: {pull.url}"
        except OrchestratorError as exc:
            kind, text = "pull_request_not_closed", f"pull request #{pull.number} is still open: {exc}"
        with self.sessions.begin() as session:
            repo.append_event(
                session,
                repo.get_deployment(session, deployment_id),
                kind,
                text,
                actor=actor,
                data={"pull_request": pull.number, "url": pull.url},
            )

    def pause(self, deployment_id: uuid.UUID, *, actor: str | None = None) -> str:
        request = ControlRequest(Event.PAUSE, actor)
        with self.sessions.begin() as session:
            deployment = repo.get_deployment(session, deployment_id)
            return control.pause(session, deployment, request, now=self.clock.now())

    def resume(self, deployment_id: uuid.UUID, *, actor: str | None = None) -> str:
        """Lift a manual pause, or take over a rollout whose driver is gone; refused while one drives it."""
        request = ControlRequest(Event.RESUME, actor)
        with self.sessions.begin() as session:
            deployment = repo.get_deployment(session, deployment_id)
            control.check(deployment, request)
            holder = leases.live_holder(session.connection(), deployment.id, now=self._moment())
            if holder is not None and holder.owner != self.owner:
                raise LeaseHeldError(deployment.id, holder)
            return control.resume(session, deployment, request)

    def abort(self, deployment_id: uuid.UUID, *, actor: str | None = None) -> list[str]:
        """Stop the rollout and put every touched cluster back on stable; returns the clusters rolled back.

        Works on every deployment that is not Succeeded, RolledBack or Aborted (a Failed one's rollback is
        finished). The abort is recorded as owed first; the deployment becomes Aborted once every touched
        cluster is back on stable. When another engine drives it, that engine rolls back (it reads the
        request before its next step, and while it waits or measures) and this call waits for it; a driver
        that is gone is taken over once its lease expires.
        """
        request = ControlRequest(Event.ABORT, actor)
        with self.sessions.begin() as session:
            deployment = repo.get_deployment(session, deployment_id)
            if Phase(deployment.phase) is Phase.AWAITING_APPROVAL:
                # Nothing was touched: Aborted at once, no rollback owed (a waiting `deploy` sees the phase).
                control.check(deployment, request)
                control.record(
                    session,
                    deployment,
                    request,
                    f"aborted by {actor or 'unknown'} before its approval; no cluster was touched",
                )
                return []
            if Phase(deployment.phase) is Phase.AWAITING_MERGE:
                control.check(deployment, request)
                pull = ControlState.of(deployment.control).pull_request
                environment_name = deployment.environment
                control.record(
                    session,
                    deployment,
                    request,
                    f"aborted by {actor or 'unknown'} before its pull request was merged; no cluster was "
                    "touched",
                )
            else:
                pull = None
                control.request_abort(session, deployment, request)
        if pull is not None:
            self._withdraw(deployment_id, environment_name, pull, actor)
            return []
        deadline = self.clock.now() + ABORT_WAIT_SECONDS
        while (holder := self.driver(deployment_id)) is not None and holder.owner != self.owner:
            if self.clock.now() >= deadline:
                raise RolloutError(
                    f"deployment {deployment_id}: abort requested; {holder.owner} drives it and is still "
                    "rolling it back (see `status`)"
                )
            self.clock.sleep(self.poll_interval)
        phase = self.run(deployment_id)  # finishes the rollback the driver (if any) did not
        with self.sessions() as session:
            deployment = repo.get_deployment(session, deployment_id)
            rolled_back = [c.cluster for c in deployment.clusters if c.phase == Phase.ABORTED.value]
            failed = [c.cluster for c in deployment.clusters if c.phase == Phase.FAILED.value]
            running_new = [c.cluster for c in deployment.clusters if c.phase == Phase.SUCCEEDED.value]
        if phase is Phase.SUCCEEDED:
            raise AbortDeclinedError(
                f"deployment {deployment_id} Succeeded: the abort came after its final promotion had begun; "
                f"{PROMOTION_IS_FINAL}"
            )
        if phase is Phase.FAILED and not failed:  # the rollback is complete: it stays Failed (`_roll_back`)
            why = (
                f"its final promotion had begun and failed part-way, so "
                f"{', '.join(running_new) or 'some clusters'} run the new release; {PROMOTION_IS_FINAL}"
            )
            self._record_declined(deployment_id, f"abort by {actor or 'unknown'} declined: {why}", actor)
            raise AbortDeclinedError(
                f"deployment {deployment_id} stays Failed: {why}, and "
                f"`orchestrator retry {str(deployment_id)[:8]}` rolls this one out again"
            )
        if phase is not Phase.ABORTED:
            raise RolloutError(
                f"deployment {deployment_id} is {phase.value}: rollback incomplete ({', '.join(failed)}); "
                "`orchestrator abort` again once the cluster is reachable"
            )
        return rolled_back

    def retry(
        self,
        deployment_id: uuid.UUID,
        *,
        actor: str | None = None,
        user_id: uuid.UUID | None = None,
        principal: Principal | None = None,
        override_freeze: str | None = None,
    ) -> uuid.UUID:
        """The same request and frozen plan as a new deployment; a Failed one's rollback is finished first.
        A new deployment like any other: a freeze window refuses it (unless an admin overrides it), and it
        awaits an approval when the environment requires one."""
        request = ControlRequest(Event.RETRY, actor)
        with self.sessions.begin() as session:
            old = repo.get_deployment(session, deployment_id)
            control.check(old, request)
            holder = leases.live_holder(session.connection(), old.id, now=self._moment())
            if holder is not None and holder.owner != self.owner:
                raise LeaseHeldError(old.id, holder)
            original, plan = self._load(old)
            phase, index, old_id = Phase(old.phase), old.current_step, old.id
        environment = self.project.environment(original.environment)
        freeze = check_freeze(
            environment, principal, override_freeze, self._moment(), operation="retry", actor=actor
        )
        if phase is Phase.FAILED:
            lease = Lease(
                self.database, old_id, self.owner, self.clock.now, seconds=self.lease_seconds, thread=False
            )
            lease.take()
            try:
                steps = plan.steps()
                touched = _touched(steps, index)
                workloads, unreachable = self._workloads(original, plan, touched)
                result = self._roll_back(
                    old_id,
                    steps,
                    index,
                    workloads,
                    unreachable,
                    outcome=Event.ROLLED_BACK,
                    cluster_phase=Phase.ROLLED_BACK,
                    reason=None,
                    step=None,
                    actor=actor,
                )
            finally:
                lease.release()
            if not result.complete:
                raise RolloutError(
                    f"deployment {old_id}: cannot retry, its rollback is incomplete: {result.message}"
                )
        with self.sessions.begin() as session:
            old = repo.get_deployment(session, old_id)
            control.record(session, old, request, f"retried by {actor or 'unknown'}")
        retried = original.model_copy(update={"actor": actor or original.actor, "user_id": user_id})
        return self._record(retried, plan, environment, freeze=freeze)


@dataclass(frozen=True)
class Prepared:
    """What a promotion or a rollback rolls out, made before `create`: the pipeline in force and every
    cluster's set (rendered at the release's commit, or read back from an earlier GitOps commit)."""

    pipeline: Pipeline
    sets: list[RenderedSet]


def _same_release(release: Release, request: DeployRequest, sets: list[RenderedSet]) -> None:
    """A promotion or rollback rolls out its release unchanged: the same service and commit, and in every
    cluster the same image digest (each cloud's registry serves the same bytes), or, for a release that
    has no digest, the same image reference."""
    changed = []
    for rendered in sets:
        digest = parse_reference(rendered.image).digest
        same = digest == release.image_digest if release.image_digest else rendered.image == release.image_ref
        if not same:
            changed.append(f"{rendered.cluster} would run {rendered.image}")
    if release.service != request.service or release.git_commit != request.git_commit or changed:
        raise RolloutError(
            f"release {release.id} ({release.service} at {release.git_commit[:12]}, {release.image_ref}) "
            f"would not be rolled out unchanged: {'; '.join(changed) or 'another service or commit'}; "
            "nothing was recorded"
        )


@dataclass(frozen=True)
class _RollbackResult:
    phase: Phase  # the deployment's phase after it
    message: str
    complete: bool  # every touched cluster was reached (a Failed deployment's `retry` may go ahead)


def _promotion_failed(session: Session, deployment_id: uuid.UUID) -> bool:
    """Whether the deployment's final promotion began and failed part-way (recorded as its phase change)."""
    changes = session.scalars(
        select(DeploymentEvent.data).where(
            DeploymentEvent.deployment_id == deployment_id, DeploymentEvent.type == "phase"
        )
    )
    return any((data or {}).get("event") == Event.PROMOTION_FAILED.value for data in changes)


def _runs_new_release(workload: Workload) -> bool:
    """The cluster's stable runs this deployment's release (read from the cluster; unreadable: no)."""
    try:
        return not workload.needs_canary()
    except Exception:
        return False


def _stop_event(stop: StopRequest) -> Event:
    """The event a finished rollback records."""
    if stop.kind == "abort":
        return Event.ABORT
    return Event.PROMOTION_FAILED if stop.promotion else Event.ROLLED_BACK


def _read_weight(workload: Workload | None) -> int | None:
    """What the cluster serves the canary now; None when it cannot be read (the last record stands)."""
    if workload is None:
        return None
    try:
        return max(0, min(100, int(workload.canary_weight())))
    except Exception:
        return None


def _describe(exc: BaseException, cluster: str) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, ConfigError | OrchestratorError):
        return text if cluster in text else f"{cluster}: {text}"
    return f"{cluster}: {type(exc).__name__}: {text}"


def _repository_of(image: str) -> str:
    """The image's repository as the manifests name it (registry included, port and all)."""
    try:
        reference = parse_reference(image)
    except ValueError as exc:
        raise ConfigError(f"image {image!r} cannot be recorded: {exc}") from None
    name = image.partition("@")[0]
    if reference.tag and name.endswith(f":{reference.tag}"):
        name = name[: -len(reference.tag) - 1]
    return name


def _tag_and_digest(image: str) -> tuple[str | None, str | None]:
    """What the manifests name the image by: its digest when they give one (`--image repo@sha256:…`)."""
    reference = parse_reference(image)
    return (None, reference.digest) if reference.digest else (reference.tag, None)
