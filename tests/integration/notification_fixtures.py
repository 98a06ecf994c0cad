"""Fixtures for notification tests: an estate whose `local` environment has destinations, a store, rollouts
recorded through the repository (the same writes the engine makes), and a notifier on a fake clock."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from orchestrator.config import Project
from orchestrator.notify.notifier import Notifier, RetryPolicy
from orchestrator.sim.clock import ManualClock
from orchestrator.store import notifications as outbox
from orchestrator.store import repository as repo
from orchestrator.store.db import engine_of
from orchestrator.store.models import Phase
from orchestrator.store.transitions import Event
from tests.helpers import copy_estate

FAST = RetryPolicy(attempts=6, first_delay=1.0, max_delay=60.0)


def estate_with(root: Path, extra_yaml: str, environment: str = "local") -> Project:
    """A copy of the reference estate with `extra_yaml` (top-level keys) added to one environment."""
    copy_estate(root)
    path = root / "environments" / f"{environment}.yaml"
    path.write_text(path.read_text() + "\n" + extra_yaml)
    return Project(root)


def record_rollout(
    sessions: sessionmaker[Session],
    outcome: Phase,
    *,
    service: str = "api",
    environment: str = "local",
    commit: str = "c0ffee" * 6 + "abcd",
    gate_value: float | None = None,
    actor: str = "dev@addtocloud.tech",
) -> uuid.UUID:
    """A deployment started and ended at `outcome`, as the engine records one: the phase changes, and a
    failing measurement of request-success-rate with `gate_value` before a rollback."""
    with sessions.begin() as session:
        release = repo.get_or_create_release(
            session,
            service=service,
            git_commit=commit,
            image_repository=f"registry.addtocloud.local/addtocloud/{service}",
            image_tag=commit[:7],
            manifest_hash=commit,
        )
        deployment = repo.create_deployment(
            session,
            release=release,
            environment=environment,
            strategy="canary",
            clusters=[repo.ClusterPlacement("aws", "aws", "us-west-2")],
            actor=actor,
        )
        repo.set_phase(session, deployment, Phase.PROGRESSING, event=Event.START)
        deployment_id = deployment.id
    with sessions.begin() as session:
        deployment = repo.get_deployment(session, deployment_id)
        if gate_value is not None:
            repo.append_event(
                session,
                deployment,
                "measurement",
                f"request-success-rate = {gate_value} -> Failed",
                step=1,
                cluster="aws",
                data={
                    "metric": "request-success-rate",
                    "phase": "Failed",
                    "value": [gate_value],
                    "message": "condition result[0] >= 0.95 is false",
                },
            )
        event = {
            Phase.SUCCEEDED: Event.COMPLETED,
            Phase.ROLLED_BACK: Event.ROLLED_BACK,
            Phase.FAILED: Event.ROLLBACK_FAILED,
            Phase.ABORTED: Event.ABORT,
        }[outcome]
        message = "request-success-rate failed in aws; rolled back aws" if gate_value is not None else None
        repo.set_phase(session, deployment, outcome, event=event, message=message)
    return deployment_id


def fake_clock() -> ManualClock:
    return ManualClock(start=time.time())


def notifier(
    project: Project, sessions: sessionmaker[Session], clock: ManualClock, **kwargs: Any
) -> Notifier:
    kwargs.setdefault("retry", FAST)
    kwargs.setdefault("timeout", 2.0)
    return Notifier(project, sessions, clock=clock, base_url="https://orchestrator.test", **kwargs)


def deliveries(sessions: sessionmaker[Session], deployment_id: uuid.UUID) -> list[dict[str, Any]]:
    with engine_of(sessions).connect() as connection:
        return outbox.deliveries_of(connection, deployment_id)


def pump(notifier: Notifier, clock: ManualClock, *, seconds: float, step: float = 0.5) -> None:
    """Passes of the notifier while the fake clock moves `seconds` on."""
    end = clock.now() + seconds
    while clock.now() < end:
        notifier.run_once()
        clock.advance(step)
    notifier.run_once()
