"""How the server's requests act on rollouts: an engine per request or job, on the server's own sessions.

A request never drives a rollout. It creates the deployment (or records a control request) through the
engine, then hands the driving to the jobs (`jobs.RolloutJobs`): with the embedded default a thread of this
process, with Postgres a durable queue that workers take from. The creating engine gives the deployment's
lease back at once, so whichever process takes the job takes the lease; two jobs for one deployment settle it
in the database (the second is refused while the first's lease is live).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import structlog
from sqlalchemy.orm import Session, sessionmaker

from orchestrator.config import Project
from orchestrator.rollout.engine import Reporter, RolloutEngine
from orchestrator.server.settings import ServerSettings
from orchestrator.store import leases
from orchestrator.store.models import Phase

if TYPE_CHECKING:
    from orchestrator.identity.principal import Principal
    from orchestrator.rollout.request import DeployRequest

log = structlog.get_logger(__name__)


class ServerRollouts:
    """Engines for the server: one per request (cheap: it renders only when it creates) and one per job."""

    def __init__(
        self, settings: ServerSettings, sessions: sessionmaker[Session], *, report: Reporter | None = None
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.report = report  # what a driving engine reports (the metrics of steps and gates)

    def project(self) -> Project:
        """The checkout as it is now: a pipeline edited on disk counts from the next request."""
        return Project(self.settings.root)

    def engine(self, *, report: Reporter | None = None) -> RolloutEngine:
        from orchestrator.runtime import rollout_engine

        return rollout_engine(
            self.project(), self.settings.database_url, report=report, sessions=self.sessions
        )

    def create(
        self, request: DeployRequest, *, principal: Principal, override_freeze: str | None = None
    ) -> uuid.UUID:
        """Record the deployment (checked, rendered, frozen, started or AwaitingApproval) and free its lease
        for the job."""
        engine = self.engine()
        deployment_id = engine.create(request, principal=principal, override_freeze=override_freeze)
        self.release_lease(engine, deployment_id)
        return deployment_id

    def release_lease(self, engine: RolloutEngine, deployment_id: uuid.UUID) -> None:
        with engine.database.begin() as connection:
            leases.give_back(connection, deployment_id, engine.owner)

    def run(self, deployment_id: uuid.UUID) -> Phase:
        """Drive the deployment (what a job does): a fresh engine, so runs on other threads share nothing."""
        phase = self.engine(report=self.report).run(deployment_id)
        log.info("rollout_ran", deployment=str(deployment_id), phase=phase.value)
        return phase
