"""The rollout state machine, in one place.

Phases: Pending → Progressing ⇄ Paused → Succeeded | Aborted | RolledBack | Failed.

Durability: a deployment's `current_step` is the index of the next step of its plan (`plan.py`). A step's
completion — the new `current_step`, every cluster's weights, and the audit event — is one transaction, made
after the step's actions took effect in the clusters. A process killed anywhere resumes at `current_step`;
the actions are idempotent (they write only what differs from live state), so the interrupted step runs again
without applying anything twice, and its completion is recorded exactly once.

Other processes steer a running rollout through the database only: `abort` and `pause` change the phase, and
the running engine looks at the phase before every step and while it waits.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, Protocol

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session, lazyload, sessionmaker

from orchestrator.config import ClusterConfig, Project
from orchestrator.config.pipeline import RollingStrategy, Strategy
from orchestrator.errors import OrchestratorError
from orchestrator.kube.client import KubeClient
from orchestrator.render.engine import Renderer
from orchestrator.render.manifests import RenderedSet, environment_hash
from orchestrator.rollout.gates import AnalysisGate, GateFactory, default_gates, validate_analysis
from orchestrator.rollout.plan import (
    Analyze,
    Deploy,
    Pause,
    PlannedStep,
    Promote,
    SetHeaderRoute,
    SetMirror,
    SetWeight,
    StartCanary,
    build_plan,
)
from orchestrator.rollout.workload import ClusterWorkload
from orchestrator.store import progress
from orchestrator.store import repository as repo
from orchestrator.store.db import engine_of
from orchestrator.store.models import (
    ACTIVE_PHASES,
    TERMINAL_PHASES,
    ClusterDeployment,
    Deployment,
    DeploymentEvent,
    Phase,
)
from orchestrator.traffic.base import HeaderMatch

log = structlog.get_logger(__name__)

Connector = Callable[[ClusterConfig], KubeClient]
Reporter = Callable[[dict[str, Any]], None]


class Clock(Protocol):
    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@dataclass(frozen=True)
class DeployRequest:
    service: str
    environment: str
    git_commit: str
    image: str | None = None
    digest: str | None = None
    built_repository: str | None = None  # where the build pushed the digest (for clusters without a registry)
    overrides: dict[str, Any] = field(default_factory=dict)
    strategy: str | None = None  # force a strategy by name ("rolling"); default: the pipeline's
    actor: str | None = None


@dataclass(frozen=True)
class _StepState:
    phase: Phase
    current_step: int
    full_promotion: bool
    finished_clusters: frozenset[str]
    step_started_at: float | None  # when the current step was first started (a resumed step keeps it)


class _Background:
    """A background analysis: a thread running the gate until told to stop or until it fails."""

    def __init__(self, wave: int, gate: Callable[[threading.Event], Any]) -> None:
        self.wave = wave
        self.failure: str | None = None
        self._gate = gate
        self._stop_event = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"background-analysis-{wave}", daemon=True)

    @classmethod
    def start(cls, wave: int, gate: Callable[[threading.Event], Any]) -> _Background:
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


class RolloutError(OrchestratorError):
    pass


class StepFailedError(RolloutError):
    def __init__(self, message: str, cluster: str | None = None) -> None:
        super().__init__(message)
        self.cluster = cluster


def _strategy_for(project: Project, config: dict[str, Any]) -> Strategy:
    pipeline = project.pipeline(config["service"])
    if config.get("strategy") == "rolling":
        return Strategy(rolling=RollingStrategy())
    return pipeline.strategy


class RolloutEngine:
    def __init__(
        self,
        project: Project,
        sessions: sessionmaker[Session],
        *,
        connect: Connector,
        clock: Clock | None = None,
        gates: GateFactory = default_gates,
        report: Reporter | None = None,
        poll_interval: float = 0.5,
    ) -> None:
        self.project = project
        self.sessions = sessions
        self.database = engine_of(sessions)  # the per-step statements run on Core connections
        self.connect = connect
        self.clock = clock or SystemClock()
        self.gates = gates
        self.analysis: AnalysisGate | None = None
        self.report = report or (lambda event: None)
        self.poll_interval = poll_interval
        self.renderer = Renderer(project)
        self._clients: dict[str, KubeClient] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._background: _Background | None = None
        self._finished: set[str] | None = None  # clusters done in the running deployment
        self._started: dict[int, float] = {}  # when each pause/analysis step first started

    # --- creating -----------------------------------------------------------------------------------------

    def render(self, config: dict[str, Any]) -> list[RenderedSet]:
        pipeline = self.project.pipeline(config["service"])
        environment = self.project.environment(config["environment"])
        return self.renderer.render_environment(
            pipeline,
            environment,
            overrides=config.get("overrides") or {},
            image=config.get("image"),
            digest=config.get("digest"),
            built_repository=config.get("built_repository"),
        )

    def create(self, request: DeployRequest) -> uuid.UUID:
        """Render (validating everything before any cluster is touched), record the release and a Pending
        deployment. Bad configuration raises ConfigError here, and nothing is recorded."""
        config: dict[str, Any] = {
            "service": request.service,
            "environment": request.environment,
            "image": request.image,
            "digest": request.digest,
            "built_repository": request.built_repository,
            "overrides": request.overrides,
            "strategy": request.strategy,
        }
        environment = self.project.environment(request.environment)
        strategy = _strategy_for(self.project, config)
        sets = self.render(config)
        validate_analysis(self.project, self.project.pipeline(request.service))
        with self.sessions.begin() as session:
            release = repo.get_or_create_release(
                session,
                service=request.service,
                git_commit=request.git_commit,
                image_repository=sets[0].image.split("@")[0].rsplit(":", 1)[0],
                image_digest=request.digest,
                image_tag=None if request.digest else _tag_of(sets[0].image),
                manifest_hash=environment_hash(sets),
                created_by=request.actor,
            )
            placements = [
                repo.ClusterPlacement(c.name, c.cloud, c.region, wave)
                for wave, clusters in enumerate(environment.rollout_waves())
                for c in clusters
            ]
            deployment = repo.create_deployment(
                session,
                release=release,
                environment=request.environment,
                strategy=strategy.name,
                clusters=placements,
                actor=request.actor,
                config=config,
            )
            return deployment.id

    # --- running ------------------------------------------------------------------------------------------

    def run(self, deployment_id: uuid.UUID) -> Phase:
        """Drive the deployment from its current step until it finishes, pauses, or is stopped."""
        with self.sessions.begin() as session:
            deployment = repo.get_deployment(session, deployment_id)
            if Phase(deployment.phase) in TERMINAL_PHASES:
                return Phase(deployment.phase)
            config = dict(deployment.config or {})
            if Phase(deployment.phase) is Phase.PENDING or (
                Phase(deployment.phase) is Phase.PAUSED and config.get("resume_requested")
            ):
                config.pop("resume_requested", None)
                deployment.config = config
                repo.set_phase(session, deployment, Phase.PROGRESSING, actor=deployment.actor)
            elif Phase(deployment.phase) is Phase.PAUSED:
                return Phase.PAUSED
            release_hash = deployment.release.manifest_hash
        sets = {s.cluster: s for s in self.render(config)}
        if environment_hash(sets.values()) != release_hash:
            return self._fail(
                deployment_id,
                "the configuration changed since this deployment was created; its release can no longer be "
                "rendered identically (deploy again to roll out the new configuration)",
                rollback=True,
                sets=sets,
            )
        environment = self.project.environment(config["environment"])
        plan = build_plan(_strategy_for(self.project, config), environment)
        self.analysis = self.gates(self.project.pipeline(config["service"]), environment)
        if any(isinstance(step.action, Analyze) for step in plan):
            self.report({"type": "gates", "source": self.analysis.source()})
        try:
            workloads = {
                name: ClusterWorkload(self._client(environment.cluster(name)), sets[name]) for name in sets
            }
        except OrchestratorError as exc:
            return self._fail(deployment_id, str(exc), rollback=True, sets=sets)
        background_step = _background_analysis(_strategy_for(self.project, config))
        self._finished, self._started = None, {}  # learnt afresh for this deployment
        try:
            return self._drive(deployment_id, plan, workloads, background_step)
        finally:
            self._stop_background()

    def _drive(
        self,
        deployment_id: uuid.UUID,
        plan: list[PlannedStep],
        workloads: dict[str, ClusterWorkload],
        background_step: Analyze | None,
    ) -> Phase:
        while True:
            state = self._state(deployment_id, plan)
            phase, index, full = state.phase, state.current_step, state.full_promotion
            if phase is Phase.ABORTED:
                self._rollback(workloads.values())
                return phase
            if phase is not Phase.PROGRESSING:
                return phase
            if index >= len(plan):
                return self._succeed(deployment_id, workloads)
            step = plan[index]
            if full and not isinstance(step.action, StartCanary | Deploy | Promote):
                self._complete(deployment_id, step, [], {}, skipped=True)
                continue
            try:
                self._follow_background(deployment_id, step, workloads, state, background_step)
                outcome = self._execute(deployment_id, step, workloads, state)
            except StepFailedError as exc:
                touched = [workloads[c] for s in plan[: index + 1] for c in s.clusters]
                return self._fail(
                    deployment_id, str(exc), rollback=True, workloads=_unique(touched), step=step
                )
            except OrchestratorError as exc:
                touched = [workloads[c] for s in plan[: index + 1] for c in s.clusters]
                return self._fail(
                    deployment_id, str(exc), rollback=True, workloads=_unique(touched), step=step
                )
            if outcome is not None:
                return outcome

    # --- background analysis --------------------------------------------------------------------------

    def _follow_background(
        self,
        deployment_id: uuid.UUID,
        step: PlannedStep,
        workloads: dict[str, ClusterWorkload],
        state: _StepState,
        background_step: Analyze | None,
    ) -> None:
        """Keep the strategy's background analysis running beside the current wave's canary steps.

        It starts once a wave's canaries are up (the step after StartCanary; again after a resume), ends
        with the wave, and a failure it found fails the step about to run.
        """
        running = self._background
        if running is not None and running.failure:
            raise StepFailedError(f"background analysis failed: {running.failure}")
        in_wave = step.wave >= 0 and not isinstance(step.action, StartCanary | Deploy | Promote)
        if running is not None and (not in_wave or running.wave != step.wave):
            self._stop_background()
        gate = self.analysis
        if background_step is None or not in_wave or self._background is not None or gate is None:
            return
        targets = [workloads[c] for c in step.clusters if c not in state.finished_clusters]
        if targets:
            self._background = _Background.start(
                step.wave,
                lambda stop: gate(
                    background_step,
                    targets,
                    lambda cluster, message, data: self._record(deployment_id, step, cluster, message, data),
                    lambda: stop.is_set() or self._phase(deployment_id) is not Phase.PROGRESSING,
                ),
            )

    def _stop_background(self) -> None:
        if self._background is not None:
            self._background.stop()
            self._background = None

    def _background_failure(self) -> str | None:
        return self._background.failure if self._background is not None else None

    def _execute(
        self,
        deployment_id: uuid.UUID,
        step: PlannedStep,
        workloads: dict[str, ClusterWorkload],
        state: _StepState,
    ) -> Phase | None:
        """Run one step; returns a phase when the rollout must stop here (paused or aborted)."""
        self.report({"type": "step", "step": step.index, "label": step.label, "clusters": [*step.clusters]})
        action = step.action
        targets = [workloads[c] for c in step.clusters]
        if not isinstance(action, StartCanary | Deploy):
            targets = [w for w in targets if w.rendered.cluster not in state.finished_clusters]
            if not targets:
                self._complete(deployment_id, step, [], {}, message=f"{step.label}: no canary here")
                return None
        if isinstance(action, Pause):
            started_at = state.step_started_at if state.step_started_at is not None else self.clock.now()
            if action.duration is None:
                with self.sessions.begin() as session:
                    deployment = repo.get_deployment(session, deployment_id)
                    repo.set_phase(
                        session,
                        deployment,
                        Phase.PAUSED,
                        message=f"paused at step {step.index}: waiting for approval",
                        step=step.index,
                    )
                self.report({"type": "paused", "step": step.index})
                return Phase.PAUSED
            self.report({"type": "waiting", "until": started_at + action.duration})
            stopped = self._wait_until(deployment_id, started_at + action.duration)
            if stopped is not None:
                return stopped
            self._complete(deployment_id, step, targets, {})
            return None
        if isinstance(action, Analyze):
            if self.analysis is None:
                raise RolloutError("this rollout has an analysis step but no analysis provider is configured")
            result = self.analysis(
                action,
                targets,
                lambda cluster, message, data: self._record(deployment_id, step, cluster, message, data),
                lambda: self._phase(deployment_id) is not Phase.PROGRESSING,
            )
            if self._phase(deployment_id) is not Phase.PROGRESSING:
                return None  # aborted or paused meanwhile: the loop decides
            if not result.passed:
                raise StepFailedError(f"analysis failed at step {step.index}: {result.message}")
            self._complete(deployment_id, step, targets, {}, message=result.message)
            return None
        if isinstance(action, StartCanary):
            # A cluster with no stable version (a first deployment) or already running this version has
            # nothing to compare a canary with: it is deployed directly and sits out the wave's steps.
            direct = [w for w in targets if not w.needs_canary()]
            writes = self._in_parallel(direct, lambda w: w.deploy())
            writes |= self._in_parallel([w for w in targets if w not in direct], lambda w: w.start_canary())
            self._complete(deployment_id, step, targets, writes, direct={w.rendered.cluster for w in direct})
            return None
        operation = _operation(action)
        writes = self._in_parallel(targets, operation)
        self._complete(deployment_id, step, targets, writes)
        return None

    def _in_parallel(
        self, targets: list[ClusterWorkload], operation: Callable[[ClusterWorkload], int]
    ) -> dict[str, int]:
        def run(workload: ClusterWorkload) -> tuple[str, int]:
            return workload.rendered.cluster, operation(workload)

        if not targets:
            return {}
        # One pool for the engine's life (threads per step would cost more than the step); the first
        # cluster is served on this thread while the pool serves the others.
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="rollout")
        futures = [self._pool.submit(run, w) for w in targets[1:]]
        calls: list[Callable[[], tuple[str, int]]] = [lambda: run(targets[0])]
        calls += [future.result for future in futures]
        results: dict[str, int] = {}
        errors: list[str] = []
        for call in calls:
            try:
                cluster, writes = call()
                results[cluster] = writes
            except OrchestratorError as exc:
                errors.append(str(exc))
        if errors:
            raise StepFailedError("; ".join(errors))
        return results

    # --- recording ----------------------------------------------------------------------------------------

    def _state(self, deployment_id: uuid.UUID, plan: list[PlannedStep] | None = None) -> _StepState:
        """Where the deployment stands: one read of plain columns per step (the hot path: Core, no ORM).

        What only this engine changes — which clusters are finished, when a step started — is read once
        per run (a resumed rollout learns it here) and then kept up to date in memory. Given the plan, the
        start of a pause or analysis step is recorded, once: a resumed pause keeps its first start.
        """
        with self.database.begin() as connection:
            now = progress.read_progress(connection, deployment_id)
        if self._finished is None or self._unrecorded_start(now, plan) is not None:
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
                step = self._unrecorded_start(now, plan)
                if step is not None:
                    self._started[now.current_step] = self._record_start(session, deployment_id, step)
        return _StepState(
            phase=now.phase,
            current_step=now.current_step,
            full_promotion=bool(now.config.get("full_promotion")),
            finished_clusters=frozenset(self._finished),
            step_started_at=self._started.get(now.current_step),
        )

    def _unrecorded_start(self, now: progress.Progress, plan: list[PlannedStep] | None) -> PlannedStep | None:
        """The current step, when it is a pause or analysis whose start this run has not learnt yet."""
        if plan is None or now.current_step >= len(plan) or now.phase is not Phase.PROGRESSING:
            return None
        step = plan[now.current_step]
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
            return _timestamp(last.created_at)
        event = repo.append_event(
            session, self._deployment(session, deployment_id), "step_started", step.label, step=step.index
        )
        return _timestamp(event.created_at)

    def _deployment(self, session: Session, deployment_id: uuid.UUID) -> Deployment:
        """The row to update, without the joined release every other read wants."""
        deployment = session.get(Deployment, deployment_id, options=[lazyload(Deployment.release)])
        if deployment is None:
            raise RolloutError(f"deployment {deployment_id} disappeared from the store")
        return deployment

    def _complete(
        self,
        deployment_id: uuid.UUID,
        step: PlannedStep,
        targets: list[ClusterWorkload],
        writes: dict[str, int],
        *,
        skipped: bool = False,
        message: str | None = None,
        direct: set[str] | None = None,
    ) -> None:
        action = step.action
        names = [w.rendered.cluster for w in targets]
        direct_names = [n for n in names if n in (direct or set())]
        text = ("skipped (full promotion): " if skipped else "") + (message or step.label)
        with self.database.begin() as connection:
            advanced = progress.advance_step(
                connection,
                deployment_id,
                step=step.index,
                message=text,
                data={"writes": writes, "skipped": skipped},
            )
            if not advanced:
                return  # someone (approve, a resumed twin) already moved past it
            set_weights = partial(progress.set_cluster_weights, connection, deployment_id)
            if isinstance(action, SetWeight):
                set_weights(names, canary_weight=action.weight, phase=Phase.PROGRESSING)
            elif isinstance(action, StartCanary):
                canaries = [n for n in names if n not in direct_names]
                set_weights(canaries, canary_weight=0, phase=Phase.PROGRESSING)
                set_weights(
                    direct_names,
                    canary_weight=0,
                    phase=Phase.SUCCEEDED,
                    message="deployed directly: no other version to compare with",
                )
            elif isinstance(action, Promote | Deploy):
                set_weights(names, canary_weight=0, phase=Phase.SUCCEEDED)
        if self._finished is not None and isinstance(action, StartCanary | Promote | Deploy):
            self._finished |= set(direct_names) if isinstance(action, StartCanary) else set(names)
        event: dict[str, Any] = {
            "type": "step_completed",
            "step": step.index,
            "label": step.label,
            "writes": writes,
            "clusters": names,  # empty: every cluster of the step had already finished
            "direct": direct_names,
        }
        if isinstance(action, SetWeight):
            event["weights"] = {name: action.weight for name in names}
        self.report(event)

    def _record(
        self, deployment_id: uuid.UUID, step: PlannedStep, cluster: str, message: str, data: dict[str, Any]
    ) -> None:
        with self.sessions.begin() as session:
            deployment = repo.get_deployment(session, deployment_id)
            repo.append_event(
                session, deployment, "measurement", message, step=step.index, cluster=cluster, data=data
            )
        self.report({**data, "type": "measurement", "cluster": cluster, "message": message})

    def _phase(self, deployment_id: uuid.UUID) -> Phase:
        with self.database.begin() as connection:
            return progress.read_phase(connection, deployment_id)

    def _wait_until(self, deployment_id: uuid.UUID, until: float) -> Phase | None:
        while True:
            state = self._state(deployment_id)
            if state.phase is not Phase.PROGRESSING:
                return state.phase
            if state.full_promotion:
                return None
            if self._background_failure():
                return None  # the next step raises it
            remaining = until - self.clock.now()
            if remaining <= 0:
                return None
            self.clock.sleep(min(self.poll_interval, remaining))

    # --- endings ------------------------------------------------------------------------------------------

    def _succeed(self, deployment_id: uuid.UUID, workloads: dict[str, ClusterWorkload]) -> Phase:
        with self.sessions.begin() as session:
            deployment = repo.get_deployment(session, deployment_id)
            for name in workloads:
                repo.upsert_cluster_deployment(
                    session, deployment, name, canary_weight=0, phase=Phase.SUCCEEDED
                )
            repo.set_phase(session, deployment, Phase.SUCCEEDED, message="rolled out to every cluster")
        self.report({"type": "finished", "phase": Phase.SUCCEEDED.value})
        return Phase.SUCCEEDED

    def _fail(
        self,
        deployment_id: uuid.UUID,
        reason: str,
        *,
        rollback: bool,
        sets: dict[str, RenderedSet] | None = None,
        workloads: list[ClusterWorkload] | None = None,
        step: PlannedStep | None = None,
    ) -> Phase:
        log.info("rollout_failed", deployment=str(deployment_id), reason=reason)
        self.report({"type": "failed", "reason": reason})
        rolled_back: list[str] = []
        rollback_errors: list[str] = []
        if rollback and workloads:
            rolled_back, rollback_errors = self._rollback(workloads)
        phase = Phase.ROLLED_BACK if rolled_back and not rollback_errors else Phase.FAILED
        with self.sessions.begin() as session:
            deployment = repo.get_deployment(session, deployment_id)
            if Phase(deployment.phase) is Phase.PENDING:
                repo.set_phase(session, deployment, Phase.PROGRESSING)
            for name in rolled_back:
                repo.upsert_cluster_deployment(
                    session, deployment, name, canary_weight=0, phase=Phase.ROLLED_BACK
                )
            for error in rollback_errors:
                repo.append_event(session, deployment, "rollback_failed", error)
            deployment.reason = reason
            message = reason if not rolled_back else f"{reason}; rolled back {', '.join(rolled_back)}"
            repo.set_phase(session, deployment, phase, message=message, step=step.index if step else None)
        self.report({"type": "finished", "phase": phase.value, "reason": reason, "rolled_back": rolled_back})
        return phase

    def _rollback(self, workloads: Iterable[ClusterWorkload]) -> tuple[list[str], list[str]]:
        done: list[str] = []
        errors: list[str] = []
        for workload in workloads:
            try:
                workload.rollback()
                done.append(workload.rendered.cluster)
            except OrchestratorError as exc:
                errors.append(f"rollback of cluster {workload.rendered.cluster} failed: {exc}")
        return done, errors

    def _client(self, cluster: ClusterConfig) -> KubeClient:
        if cluster.name not in self._clients:
            self._clients[cluster.name] = self.connect(cluster)
        return self._clients[cluster.name]

    # --- manual control -----------------------------------------------------------------------------------

    def approve(self, deployment_id: uuid.UUID, *, full: bool = False, actor: str | None = None) -> None:
        """Go past the pause the rollout waits at (or, with full, skip every remaining step)."""
        with self.sessions.begin() as session:
            deployment = repo.get_deployment(session, deployment_id)
            phase = Phase(deployment.phase)
            if phase not in ACTIVE_PHASES:
                raise RolloutError(
                    f"deployment {deployment.id} is {phase.value}; only a running rollout is approved"
                )
            config = dict(deployment.config or {})
            if full:
                config["full_promotion"] = True
            if phase is Phase.PAUSED:
                config["resume_requested"] = True
                step = deployment.current_step
                repo.append_event(
                    session,
                    deployment,
                    "approved",
                    "approved" + (" (full)" if full else ""),
                    step=step,
                    actor=actor,
                )
                deployment.current_step = step + 1
            else:
                repo.append_event(session, deployment, "approved", "full promotion requested", actor=actor)
            deployment.config = config

    def pause(self, deployment_id: uuid.UUID, *, actor: str | None = None) -> None:
        with self.sessions.begin() as session:
            deployment = repo.get_deployment(session, deployment_id)
            if Phase(deployment.phase) is not Phase.PROGRESSING:
                raise RolloutError(
                    f"deployment {deployment.id} is {deployment.phase}; only a progressing one pauses"
                )
            repo.set_phase(session, deployment, Phase.PAUSED, message="paused by hand", actor=actor)

    def resume(self, deployment_id: uuid.UUID, *, actor: str | None = None) -> None:
        with self.sessions.begin() as session:
            deployment = repo.get_deployment(session, deployment_id)
            if Phase(deployment.phase) not in (Phase.PAUSED, Phase.PROGRESSING, Phase.PENDING):
                raise RolloutError(
                    f"deployment {deployment.id} is {deployment.phase}; there is nothing to resume"
                )
            config = dict(deployment.config or {})
            config["resume_requested"] = True
            deployment.config = config
            repo.append_event(session, deployment, "resumed", "resumed", actor=actor)

    def abort(self, deployment_id: uuid.UUID, *, actor: str | None = None) -> list[str]:
        """Stop the rollout and put every cluster back on stable; returns the clusters rolled back."""
        with self.sessions.begin() as session:
            deployment = repo.get_deployment(session, deployment_id)
            if Phase(deployment.phase) in TERMINAL_PHASES:
                raise RolloutError(f"deployment {deployment.id} already finished ({deployment.phase})")
            config = dict(deployment.config or {})
            if Phase(deployment.phase) is Phase.PENDING:
                repo.set_phase(session, deployment, Phase.PROGRESSING, actor=actor)
            repo.set_phase(session, deployment, Phase.ABORTED, message="aborted by hand", actor=actor)
        sets = {s.cluster: s for s in self.render(config)}
        environment = self.project.environment(config["environment"])
        workloads = [ClusterWorkload(self._client(environment.cluster(n)), s) for n, s in sets.items()]
        done, errors = self._rollback(workloads)
        with self.sessions.begin() as session:
            deployment = repo.get_deployment(session, deployment_id)
            for name in done:
                repo.upsert_cluster_deployment(
                    session, deployment, name, canary_weight=0, phase=Phase.ABORTED
                )
            for error in errors:
                repo.append_event(session, deployment, "rollback_failed", error, actor=actor)
        if errors:
            raise RolloutError("; ".join(errors))
        return done


def _operation(action: Any) -> Callable[[ClusterWorkload], int]:
    if isinstance(action, Deploy):
        return lambda w: w.deploy()
    if isinstance(action, StartCanary):
        return lambda w: w.start_canary()
    if isinstance(action, SetWeight):
        weight = action.weight
        return lambda w: w.set_weight(weight)
    if isinstance(action, Promote):
        delay = action.scale_down_delay
        return lambda w: w.promote(delay)
    if isinstance(action, SetHeaderRoute):
        matches = [HeaderMatch(name, kind, value) for name, kind, value in action.matches]
        name = action.name
        return lambda w: int(w.router.set_header_route(name, matches))
    if isinstance(action, SetMirror):
        mirror, percentage = action.name, action.percentage
        return lambda w: int(w.router.set_mirror(mirror, percentage))
    raise TypeError(f"no operation for {action!r}")


def _unique(workloads: list[ClusterWorkload]) -> list[ClusterWorkload]:
    seen: dict[str, ClusterWorkload] = {}
    for workload in workloads:
        seen.setdefault(workload.rendered.cluster, workload)
    return list(seen.values())


def _timestamp(moment: datetime) -> float:
    return moment.timestamp()


def _tag_of(image: str) -> str | None:
    if "@" in image:
        return None
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else "latest"
