"""Wiring for commands that roll out: the state store, cluster connections, and the rollout engine.

Kept out of `cli/` so the server's workers assemble an engine the same way.
"""

from __future__ import annotations

import os

from sqlalchemy.orm import Session, sessionmaker

from orchestrator.clusters.connect import connect
from orchestrator.config import ClusterConfig, Project
from orchestrator.errors import ConfigError
from orchestrator.kube.client import KubeClient
from orchestrator.rollout.desired import GitDesiredState
from orchestrator.rollout.engine import Reporter, RolloutEngine
from orchestrator.rollout.lease import HEARTBEAT_SECONDS, LEASE_SECONDS
from orchestrator.settings import state_dir
from orchestrator.store import db


def open_store(url: str) -> sessionmaker[Session]:
    """Sessions on the state database. The embedded SQLite default is created or migrated on first use;
    a shared database (Postgres) must be migrated on purpose with `orchestrator db upgrade`."""
    return db.open_sessions(url)


def connect_cluster(cluster: ClusterConfig) -> KubeClient:
    return KubeClient(connect(cluster.target, name=cluster.name), cluster=cluster.name)


def rollout_engine(
    project: Project,
    database_url: str,
    *,
    report: Reporter | None = None,
) -> RolloutEngine:
    lease_seconds, heartbeat_seconds = lease_settings()
    return RolloutEngine(
        project,
        open_store(database_url),
        desired=GitDesiredState(state_dir(), project.root),
        connect=connect_cluster,
        report=report,
        lease_seconds=lease_seconds,
        heartbeat_seconds=heartbeat_seconds,
    )


def lease_settings() -> tuple[float, float]:
    """The driver's lease and heartbeat (seconds); the environment may shorten them (tests that kill a
    driver on purpose do)."""
    values = [LEASE_SECONDS, HEARTBEAT_SECONDS]
    for index, variable in enumerate(("ORCHESTRATOR_LEASE_SECONDS", "ORCHESTRATOR_HEARTBEAT_SECONDS")):
        value = os.environ.get(variable)
        if value:
            try:
                values[index] = float(value)
            except ValueError:
                raise ConfigError(f"{variable}={value!r} is not a number of seconds") from None
    return values[0], values[1]
