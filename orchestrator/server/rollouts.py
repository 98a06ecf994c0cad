"""How the server's requests act on rollouts: an engine per request or job, on the server's own sessions.

A request never drives a rollout. It creates the deployment (or records a control request) through the
engine, then hands the driving to the jobs (`jobs.RolloutJobs`): with the embedded default a thread of this
process, with Postgres a durable queue that workers take from. Deployments are recorded without a lease
(`create(..., leased=False)`; a retry's lease is given back), so whichever process takes the job takes the
lease; two jobs for one deployment settle it in the database.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session, sessionmaker

from orchestrator.config import Project
from orchestrator.errors import ConfigError
from orchestrator.rollout.engine import RolloutEngine
from orchestrator.server.settings import ServerSettings
from orchestrator.store import leases

if TYPE_CHECKING:
    from orchestrator.identity.principal import Principal
    from orchestrator.rollout.request import DeployRequest


class ServerRollouts:
    """Engines for the server's requests: one per request (cheap: it renders only when it creates)."""

    def __init__(self, settings: ServerSettings, sessions: sessionmaker[Session]) -> None:
        self.settings = settings
        self.sessions = sessions

    def project(self) -> Project:
        """The checkout as it is now: a pipeline edited on disk counts from the next request."""
        return Project(self.settings.root)

    def project_at(self, commit: str) -> tuple[Project, str]:
        """The project at `commit` (its tree, fetched from the checkout's origin when missing), and its SHA;
        a commit neither has is bad input."""
        from orchestrator.gitops.checkouts import CommitUnavailableError, project_at

        try:
            return project_at(self.settings.root, self.settings.state_dir, commit)
        except CommitUnavailableError:  # (its message names the server's folder: not for API clients)
            raise ConfigError(
                f"commit {commit} is not in the checkout of the server, nor could it be fetched from its "
                "origin"
            ) from None

    def engine(self, project: Project | None = None) -> RolloutEngine:
        from orchestrator.runtime import rollout_engine

        return rollout_engine(
            project or self.project(),
            self.settings.database_url,
            sessions=self.sessions,
            checkout=self.settings.root,
        )

    def create(
        self,
        request: DeployRequest,
        *,
        principal: Principal,
        override_freeze: str | None = None,
        project: Project | None = None,
    ) -> uuid.UUID:
        """Record the deployment (checked, rendered, frozen, started or AwaitingApproval), leased to nobody:
        the job that drives it takes the lease. `project`: a commit's tree to render (default: the
        checkout), under today's freeze windows and approval as well as its own."""
        today = self.project().environment(request.environment) if project is not None else None
        return self.engine(project).create(
            request, principal=principal, override_freeze=override_freeze, leased=False, today=today
        )

    def release_lease(self, engine: RolloutEngine, deployment_id: uuid.UUID) -> None:
        with engine.database.begin() as connection:
            leases.give_back(connection, deployment_id, engine.owner)
