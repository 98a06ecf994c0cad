"""`orchestrator stats`: DORA's four keys on a store with a known history, against a hand calculation."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

from orchestrator.runtime import open_store
from orchestrator.store import db
from orchestrator.store import repository as repo
from orchestrator.store.models import Deployment, Phase
from tests.helpers import run_cli

HOUR, DAY = timedelta(hours=1), timedelta(days=1)


def record(
    session: object,
    *,
    number: int,
    phase: Phase,
    finished: datetime,
    committed: datetime | None = None,
    kind: str = "deploy",
    undoes: uuid.UUID | None = None,
) -> Deployment:
    release = repo.get_or_create_release(
        session,  # type: ignore[arg-type]
        service="api",
        git_commit=f"{number:040d}",
        image_repository="registry.local/api",
        image_tag=f"v{number}",
        manifest_hash=f"h{number}",
        committed_at=committed,
    )
    deployment = repo.create_deployment(
        session,  # type: ignore[arg-type]
        release=release,
        environment="local",
        strategy="canary",
        clusters=[repo.ClusterPlacement("aws", "aws", "us-west-2")],
    )
    # The rows as a finished rollout leaves them: what is under test is the arithmetic over them.
    deployment.phase, deployment.status = phase.value, phase.seed_status
    deployment.kind, deployment.undoes_id = kind, undoes
    deployment.created_at = deployment.started_at = finished - 0.5 * HOUR
    deployment.finished_at = finished
    session.flush()  # type: ignore[attr-defined]
    return deployment


def record_known_history(session: object) -> None:
    """Eight deployments of api in local, the last ten to six days ago, whose figures are worked out by hand
    in HAND_CALCULATED."""
    t = datetime.now(UTC) - 10 * DAY
    record(session, number=0, phase=Phase.SUCCEEDED, finished=t - 30 * DAY, committed=t - 31 * DAY)  # too old
    record(session, number=1, phase=Phase.SUCCEEDED, finished=t + HOUR, committed=t - 2 * HOUR)  # lead 3 h
    record(session, number=2, phase=Phase.ROLLED_BACK, finished=t + DAY, committed=t + DAY - 5 * HOUR)
    record(session, number=3, phase=Phase.SUCCEEDED, finished=t + DAY + 2 * HOUR, committed=t + DAY - HOUR)
    undone = record(
        session, number=4, phase=Phase.SUCCEEDED, finished=t + 2 * DAY, committed=t + 2 * DAY - 9 * HOUR
    )
    rollback = record(
        session,
        number=5,
        phase=Phase.SUCCEEDED,
        finished=t + 2 * DAY + 1.5 * HOUR,
        kind="rollback",
        undoes=undone.id,
    )
    rollback.created_at = t + 2 * DAY + HOUR
    record(session, number=6, phase=Phase.ABORTED, finished=t + 3 * DAY)
    record(session, number=7, phase=Phase.FAILED, finished=t + 4 * DAY)


HAND_CALCULATED = {
    # Succeeded changes in 30 days: 1, 3, 4 (the old one is outside, the rollback is no change): 0.1 a day.
    "deployment_frequency": {"value": 0.1, "unit": "per day", "tier": "medium", "samples": 3},
    # Lead times 3 h, 3 h, 9 h: the median is 3 h.
    "lead_time_for_changes": {"value": 3.0, "unit": "hours", "tier": "elite", "samples": 3},
    # Changes that finished: 1, 2, 3, 4, 7 (6 was aborted); failed: 2 (rolled back), 4 (undone), 7 (failed).
    "change_failure_rate": {"value": 0.6, "unit": "ratio", "tier": "low", "samples": 5},
    # 2 -> 3 took 2 h; 4's rollback started at +1 h and succeeded at +1.5 h: 0.5 h; 7 never recovered.
    "failed_deployment_recovery_time": {"value": 1.25, "unit": "hours", "tier": "high", "samples": 2},
}


def test_the_four_keys_and_their_tiers_match_a_hand_calculation(each_backend_url: str) -> None:
    db.upgrade(each_backend_url)  # a shared (Postgres) database is migrated on purpose, as in production
    with open_store(each_backend_url).begin() as session:
        record_known_history(session)
    shown = run_cli(
        "stats",
        "api",
        "--env",
        "local",
        "--since",
        "30d",
        "-o",
        "json",
        env={"ORCHESTRATOR_DATABASE_URL": each_backend_url},
    )
    assert shown.returncode == 0, shown.stderr
    stats = json.loads(shown.stdout)
    assert {key: stats[key] for key in HAND_CALCULATED} == HAND_CALCULATED


def test_a_bad_window_is_bad_usage(sqlite_url: str) -> None:
    shown = run_cli("stats", "--since", "forever", env={"ORCHESTRATOR_DATABASE_URL": sqlite_url})
    assert shown.returncode == 2 and "--since: 'forever' is not a window" in shown.stderr


def test_a_window_longer_than_a_century_is_bad_usage_not_a_crash(sqlite_url: str) -> None:
    shown = run_cli("stats", "--since", "999999w", env={"ORCHESTRATOR_DATABASE_URL": sqlite_url})
    assert shown.returncode == 2 and "at most a hundred years" in shown.stderr
    assert "Traceback" not in shown.stderr


def test_the_trend_is_the_window_cut_into_parts_each_computed_alone(sqlite_url: str) -> None:
    from orchestrator.store import dora

    until = datetime.now(UTC)
    since = until - 10 * DAY
    with open_store(sqlite_url).begin() as session:
        record(session, number=1, phase=Phase.SUCCEEDED, finished=since + 0.5 * DAY)
        record(session, number=2, phase=Phase.SUCCEEDED, finished=since + 0.7 * DAY)
        record(session, number=3, phase=Phase.FAILED, finished=since + 9.5 * DAY)
    with open_store(sqlite_url)() as session:
        parts = dora.trend(session, since=since, until=until, buckets=5)
        whole = dora.compute(session, since=since, until=until)
    assert [(p.since, p.until) for p in parts] == [
        (since + 2 * i * DAY, since + 2 * (i + 1) * DAY) for i in range(5)
    ]
    assert [p.deployment_frequency.samples for p in parts] == [2, 0, 0, 0, 0]
    assert parts[0].deployment_frequency.value == 1.0  # two in two days
    assert [p.change_failure_rate.value for p in parts] == [0.0, None, None, None, 1.0]
    assert sum(p.deployment_frequency.samples for p in parts) == whole.deployment_frequency.samples
