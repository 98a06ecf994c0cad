"""What a rollout job does, wherever it runs (a worker on Postgres, or the server's own threads on SQLite).

Two kinds of job:

- a **rollout request** (`run_request`): a webhook asked for a release of a service in an environment.
  The job turns the request into a deployment and drives it: a new release of the service at the
  request's commit (push, workflow_run, registry), or, for a GitHub release, the promotion of the release
  at its commit that the environment before the request's verified (`rollout/promotion.py`). One rollout
  at a time per service and environment is the database's rule (the unique index on active
  deployments): while another deployment holds the environment, the job waits and retries. Of several
  requests for one service and environment, the newest wins: a request with a newer one behind it is
  marked superseded instead of deployed, so ten pushes in a row deploy the running release and then the
  last, not ten releases one after another.
- a **rollout** (`run_rollout`): drive a deployment already recorded (a REST call created it).

Both are safe to run twice, or again after a worker died: the request row says whether its deployment
exists (and a deployment records the request that made it, for the moment between the two commits), the
engine resumes a deployment from the store, and refuses it while another driver's lease is live (the job
then retries once that lease can have expired).
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from orchestrator.config import Project
from orchestrator.errors import OrchestratorError
from orchestrator.gitops.checkouts import project_at
from orchestrator.gitops.commits import commit_time
from orchestrator.logs import get_logger
from orchestrator.rollout.engine import RolloutEngine
from orchestrator.rollout.lease import LeaseHeldError
from orchestrator.rollout.request import DeployRequest, Trigger
from orchestrator.runtime import rollout_engine
from orchestrator.server.github_events import RELEASE
from orchestrator.store import repository as repo
from orchestrator.store.models import (
    ACTIVE_PHASES,
    TERMINAL_PHASES,
    Deployment,
    Phase,
    Release,
    RequestStatus,
    RolloutRequest,
)

log = get_logger(__name__)

BUSY_RETRY_SECONDS = 2.0  # the environment is held by another rollout: look again this often
SOURCE_RETRY_SECONDS = 2.0  # a release's promotion waits for the environment before to finish verifying it
HANDED_BACK_RETRY_SECONDS = 0.0  # a stopping worker handed the rollout back: any other worker, at once
MAX_FAILURE_RETRIES = 8  # an unexpected error (database gone, a bug): retried with backoff, then given up
# Requests still owed a decision; a newer one of these supersedes an older one.
LIVE_STATUSES = (RequestStatus.QUEUED.value, RequestStatus.DEPLOYING.value, RequestStatus.DEPLOYED.value)


@dataclass(frozen=True)
class Done:
    message: str


@dataclass(frozen=True)
class RetryLater:
    seconds: float
    reason: str


Outcome = Done | RetryLater


def failure_backoff(attempt: int) -> float:
    """Seconds before retrying a job that failed unexpectedly for the `attempt`-th time (1, 2, 4 … 60)."""
    return float(min(2 ** max(attempt - 1, 0), 60))


class _SourceRollingOut(Exception):
    """The environment a release is promoted from is rolling that release out still: not yet, not never."""


class JobRunner:
    def __init__(
        self,
        root: Path,
        state_dir: Path,
        database_url: str,
        sessions: sessionmaker[Session],
    ) -> None:
        self.root = root
        self.state_dir = state_dir
        self.database_url = database_url
        self.sessions = sessions
        self._running: dict[int, RolloutEngine] = {}  # id(engine) -> engine, to hand back on stop
        self._lock = threading.Lock()
        self.stopping = threading.Event()

    # --- what a stopping worker does ---

    def stop(self) -> None:
        """Stop every rollout this process drives at its next step boundary, giving the leases back."""
        self.stopping.set()
        with self._lock:
            engines = list(self._running.values())
        for engine in engines:
            engine.hand_back()

    # --- jobs ---

    def run_rollout(self, deployment_id: uuid.UUID) -> Outcome:
        return self._drive(deployment_id, request_id=None)

    def run_request(self, request_id: int) -> Outcome:
        decided = self._decide(request_id)
        if not isinstance(decided, RolloutRequest):
            return decided
        if decided.deployment_id is not None:
            return self._drive_existing(decided.deployment_id, request_id)
        return self._create_and_drive(decided)

    def _decide(self, request_id: int) -> Outcome | RolloutRequest:
        """Done, wait, or go on with the request (its deployment, when it has one)."""
        with self.sessions.begin() as session:
            request = session.get(RolloutRequest, request_id)
            if request is None:
                return Done(f"rollout request {request_id} no longer exists")
            if request.status in (RequestStatus.SUPERSEDED, RequestStatus.FAILED, RequestStatus.DEPLOYED):
                return Done(f"rollout request {request_id} is already {request.status}")
            if request.deployment_id is not None:
                return request
            newer = session.scalar(
                select(RolloutRequest.id)
                .where(
                    RolloutRequest.service == request.service,
                    RolloutRequest.environment == request.environment,
                    RolloutRequest.id > request.id,
                    RolloutRequest.status.in_(LIVE_STATUSES),
                )
                .order_by(RolloutRequest.id.desc())
                .limit(1)
            )
            if newer is not None:
                request.status = RequestStatus.SUPERSEDED.value
                request.superseded_by = newer
                request.reason = f"superseded by the newer rollout request {newer}"
                log.info("rollout_request_superseded", request=request_id, by=newer, service=request.service)
                return Done(request.reason)
            active = repo.latest_deployment(
                session, request.service, request.environment, phases=ACTIVE_PHASES
            )
            if active is not None:
                trigger = (active.config or {}).get("trigger") or {}
                if trigger.get("request") == request_id:
                    # Created by an earlier run of this job that died before linking it.
                    request.deployment_id = active.id
                    request.status = RequestStatus.DEPLOYING.value
                    return request
                return RetryLater(
                    BUSY_RETRY_SECONDS,
                    f"{request.service} in {request.environment} is being rolled out by deployment "
                    f"{active.id} ({active.phase})",
                )
            return request

    def _create_and_drive(self, request: RolloutRequest) -> Outcome:
        try:
            if request.event == RELEASE:  # promote the release at its commit; any other event deploys
                engine, deployment_id = self._promote(request)
            else:
                engine, deployment_id = self._deploy(request)
        except _SourceRollingOut as exc:
            return RetryLater(SOURCE_RETRY_SECONDS, str(exc))
        except repo.DeploymentConflictError as exc:
            return RetryLater(BUSY_RETRY_SECONDS, str(exc))
        except OrchestratorError as exc:  # bad configuration, a policy, an unknown commit: not worth retrying
            self._settle(request.id, RequestStatus.FAILED, reason=str(exc))
            log.info("rollout_request_failed", request=request.id, service=request.service, reason=str(exc))
            return Done(str(exc))
        with self.sessions.begin() as session:
            session.execute(
                update(RolloutRequest)
                .where(RolloutRequest.id == request.id)
                .values(deployment_id=deployment_id, status=RequestStatus.DEPLOYING.value)
            )
        log.info("rollout_request_deploying", request=request.id, deployment=str(deployment_id))
        return self._run_engine(engine, deployment_id, request.id)

    def _deploy(self, request: RolloutRequest) -> tuple[RolloutEngine, uuid.UUID]:
        """A new release of the service at the request's commit (or the pushed digest's), if the
        environment's `deployers` let the webhook's source deploy there (as a release's promotion asks)."""
        from orchestrator.identity.principal import webhook_principal
        from orchestrator.identity.rules import Action, require

        commit = request.git_commit or self._built_commit(request)
        project, sha = project_at(self.root, self.state_dir, commit)
        principal = require(
            webhook_principal(request.actor), Action.DEPLOY, project.environment(request.environment)
        )
        engine = rollout_engine(project, self.database_url, sessions=self.sessions, checkout=self.root)
        deploy = DeployRequest(
            service=request.service,
            environment=request.environment,
            git_commit=sha,
            committed_at=commit_time(project.root if sha == commit else self.root, sha),
            digest=request.digest,
            built_repository=request.built_repository,
            actor=request.actor,
            trigger=_trigger(request),
        )
        if request.digest is None:
            with self.sessions() as session:
                built = repo.built_image(session, request.service, sha)
            if built is not None:
                deploy = deploy.model_copy(update={"built_repository": built[0], "digest": built[1]})
        return engine, engine.create(deploy, principal=principal)

    def _promote(self, request: RolloutRequest) -> tuple[RolloutEngine, uuid.UUID]:
        """A GitHub release: the release at its commit that the environment before the request's verified,
        promoted unchanged by the promotion code `promote` uses (its refusals, approvals and freezes)."""
        from orchestrator.identity.principal import webhook_principal
        from orchestrator.rollout import promotion
        from orchestrator.runtime import promote

        # Promotion renders the release's own commit (pipelines, templates) with today's environments, so
        # the checkout itself is the project, as for `orchestrator promote`.
        project = Project(self.root)
        engine = rollout_engine(project, self.database_url, sessions=self.sessions)
        commit = request.git_commit or ""
        source = promotion.previous_environment(project.pipeline(request.service), request.environment, None)
        with self.sessions() as session:
            in_flight = promotion.rolling_out_at_commit(session, request.service, commit).get(source)
            release = promotion.verified_release(session, request.service, source, commit)
        if in_flight is not None:
            # Published while the environment before is still verifying this release (its first rollout):
            # the promotion goes once that rollout Succeeds, and is refused below if it ends otherwise.
            raise _SourceRollingOut(
                f"waiting for deployment {in_flight.id} ({in_flight.phase}) of {request.service} at "
                f"{commit[:12]} in {source} to finish before promoting to {request.environment}"
            )
        if release is None:
            raise promotion.PromotionRefusedError(
                f"no release of {request.service} at commit {commit[:12]} Succeeded in {source}, the "
                f"environment before {request.environment}; nothing was promoted"
            )
        deployment_id, _ = promote(
            project,
            engine,
            webhook_principal(request.actor),
            service=request.service,
            target=request.environment,
            source=source,
            release_ref=str(release),
            trigger=_trigger(request),
        )
        return engine, deployment_id

    def _drive_existing(self, deployment_id: uuid.UUID, request_id: int) -> Outcome:
        with self.sessions() as session:
            exists = session.get(Deployment, deployment_id) is not None
        if not exists:
            self._settle(request_id, RequestStatus.FAILED, reason="its deployment was deleted")
            return Done("deployment gone")
        return self._drive(deployment_id, request_id=request_id)

    def _drive(self, deployment_id: uuid.UUID, *, request_id: int | None) -> Outcome:
        # The frozen plan holds what to apply; the checkout's project is read for cluster connections only.
        engine = rollout_engine(Project(self.root), self.database_url, sessions=self.sessions)
        return self._run_engine(engine, deployment_id, request_id)

    def _run_engine(self, engine: RolloutEngine, deployment_id: uuid.UUID, request_id: int | None) -> Outcome:
        if self.stopping.is_set():
            return RetryLater(HANDED_BACK_RETRY_SECONDS, "this worker is stopping")
        with self._lock:
            self._running[id(engine)] = engine
        try:
            phase = engine.run(deployment_id)
        except LeaseHeldError as exc:
            expires = exc.holder.expires_at
            wait = BUSY_RETRY_SECONDS
            if expires is not None:
                wait = max(0.5, min((expires - datetime.now(UTC)).total_seconds() + 0.2, 30.0))
            return RetryLater(wait, str(exc))
        finally:
            with self._lock:
                self._running.pop(id(engine), None)
        if phase in TERMINAL_PHASES:
            if request_id is not None:
                self._settle(
                    request_id, RequestStatus.DEPLOYED, reason=f"deployment {deployment_id}: {phase}"
                )
            return Done(f"deployment {deployment_id}: {phase}")
        if phase is Phase.PAUSED or phase is Phase.AWAITING_APPROVAL:
            # The request's part is over: whoever approves or resumes drives the deployment from here (the
            # API queues a rollout job for it), so the request is settled rather than left deploying.
            waiting = f"deployment {deployment_id} is {phase}: it goes on when a person approves or resumes"
            if request_id is not None:
                self._settle(request_id, RequestStatus.DEPLOYED, reason=waiting)
            return Done(waiting)
        if phase is Phase.AWAITING_MERGE:
            # As with an approval: the merge's webhook queues the rollout job that drives it from here.
            waiting = f"deployment {deployment_id} is {phase}: its pull request's merge starts the rollout"
            if request_id is not None:
                self._settle(request_id, RequestStatus.DEPLOYED, reason=waiting)
            return Done(waiting)
        # Still Progressing: this engine stopped driving (handed back, or its lease was taken over).
        return RetryLater(HANDED_BACK_RETRY_SECONDS, f"deployment {deployment_id} handed back while {phase}")

    # --- helpers ---

    def _settle(self, request_id: int, status: RequestStatus, *, reason: str) -> None:
        with self.sessions.begin() as session:
            session.execute(
                update(RolloutRequest)
                .where(RolloutRequest.id == request_id)
                .values(status=status.value, reason=reason)
            )

    def _built_commit(self, request: RolloutRequest) -> str | None:
        """The commit a registry notification's image was built from, if `orchestrator build` recorded it."""
        if request.digest is None:
            return None
        with self.sessions() as session:
            return session.scalar(
                select(Release.git_commit)
                .where(Release.service == request.service, Release.image_digest == request.digest)
                .order_by(Release.created_at.desc())
                .limit(1)
            )


def _trigger(request: RolloutRequest) -> Trigger:
    return Trigger(
        source="registry" if request.event.startswith("registry") else "github",
        event=request.event,
        delivery=request.delivery.delivery_id if request.delivery else "-",
        request=request.id,
        commit=request.git_commit,
    )


def unfinished_requests(sessions: sessionmaker[Session]) -> list[int]:
    """Requests a server starting on SQLite takes up again (queued or deploying when it last stopped)."""
    with sessions() as session:
        return list(
            session.scalars(
                select(RolloutRequest.id)
                .where(RolloutRequest.status.in_((RequestStatus.QUEUED.value, RequestStatus.DEPLOYING.value)))
                .order_by(RolloutRequest.id)
            )
        )
