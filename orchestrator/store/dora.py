"""DORA's four keys, computed from the store alone: deployment frequency, lead time for changes, change
failure rate, failed deployment recovery time — each with its tier from DORA's 2024 report.

What counts (the same for the CLI and the API):
- A *deployment* is a row of `deployments` that finished inside the window, for the service and environment
  asked for (every one when not). Aborted deployments were stopped by a person before they delivered or
  failed: they count for nothing. Rollbacks (kind `rollback`) restore service; they are not changes, so they
  count only as recoveries.
- *Deployment frequency*: Succeeded deployments per day over the window.
- *Lead time for changes*: from the commit's time (`releases.committed_at`, its committer date) to the
  deployment's Succeeded, the median over the window's Succeeded deployments that know their commit time.
- *Change failure rate*: of the changes that finished (Succeeded, RolledBack, Failed), the share that failed:
  RolledBack, Failed, or Succeeded and later undone by a rollback (`undoes_id`).
- *Failed deployment recovery time*: from a failure (its finish, or for an undone success the rollback's
  start) to the next Succeeded deployment of that service in that environment, the median.

Tiers follow the 2024 report's cluster descriptions: frequency elite = at least daily (on demand),
high = at least weekly, medium = at least monthly, else low; lead time elite < 1 day, high < 1 week,
medium < 1 month, else low; recovery elite < 1 hour, high < 1 day, medium < 1 week, else low. The
report's change failure rates are not ordered by tier (elite 5 %, high 20 %, medium 10 %, low 40 %), so a
rate takes the tier whose figure is nearest (ties to the better tier).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.errors import ConfigError
from orchestrator.store.models import Deployment, DeploymentKind, Phase

DAY = timedelta(days=1)
FAILED = frozenset({Phase.ROLLED_BACK.value, Phase.FAILED.value})
CHANGE_FAILURE_TIERS = (("elite", 0.05), ("high", 0.20), ("medium", 0.10), ("low", 0.40))


@dataclass(frozen=True)
class Figure:
    value: float | None  # None: nothing to measure in the window
    unit: str
    tier: str | None
    samples: int

    def to_json(self) -> dict[str, object]:
        value = None if self.value is None else round(self.value, 4)
        return {"value": value, "unit": self.unit, "tier": self.tier, "samples": self.samples}


@dataclass(frozen=True)
class Stats:
    since: datetime
    until: datetime
    service: str | None
    environment: str | None
    deployment_frequency: Figure
    lead_time: Figure
    change_failure_rate: Figure
    recovery_time: Figure

    def to_json(self) -> dict[str, object]:
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "service": self.service,
            "environment": self.environment,
            "deployment_frequency": self.deployment_frequency.to_json(),
            "lead_time_for_changes": self.lead_time.to_json(),
            "change_failure_rate": self.change_failure_rate.to_json(),
            "failed_deployment_recovery_time": self.recovery_time.to_json(),
        }


MAX_WINDOW = timedelta(days=36_500)  # a hundred years: more is no window, and dates would overflow


def window_start(span: timedelta | None, until: datetime, *, text: str, key: str) -> datetime:
    """Where a window of `span` before `until` starts; ConfigError (bad usage) when `span` is not a window
    (None: the text did not parse) or is longer than a hundred years."""
    if span is None or span > MAX_WINDOW:
        raise ConfigError(
            f"{text!r} is not a window; use a number of hours, days or weeks (12h, 30d, 2w), "
            "at most a hundred years",
            key=key,
        )
    return until - span


def frequency_tier(per_day: float) -> str:
    if per_day >= 1:
        return "elite"
    if per_day >= 1 / 7:
        return "high"
    if per_day >= 1 / 30:
        return "medium"
    return "low"


def lead_time_tier(hours: float) -> str:
    return "elite" if hours < 24 else "high" if hours < 24 * 7 else "medium" if hours < 24 * 30 else "low"


def recovery_tier(hours: float) -> str:
    return "elite" if hours < 1 else "high" if hours < 24 else "medium" if hours < 24 * 7 else "low"


def change_failure_tier(rate: float) -> str:
    return min(CHANGE_FAILURE_TIERS, key=lambda tier: abs(rate - tier[1]))[0]


def compute(
    session: Session,
    *,
    since: datetime,
    until: datetime,
    service: str | None = None,
    environment: str | None = None,
) -> Stats:
    query = select(Deployment).where(Deployment.finished_at.is_not(None))
    if service is not None:
        query = query.where(Deployment.service == service)
    if environment is not None:
        query = query.where(Deployment.environment == environment)
    # Recoveries may finish after the window's failures; everything up to `until` is read, then filtered.
    rows = [d for d in session.scalars(query.where(Deployment.finished_at <= until)) if d.finished_at]
    rows.sort(key=lambda d: (d.finished_at, d.created_at))
    in_window = [d for d in rows if d.finished_at is not None and d.finished_at >= since]
    changes = [
        d for d in in_window if d.kind != DeploymentKind.ROLLBACK.value and d.phase != Phase.ABORTED.value
    ]
    succeeded = [d for d in changes if d.phase == Phase.SUCCEEDED.value]
    undone = {d.undoes_id: d for d in rows if d.kind == DeploymentKind.ROLLBACK.value and d.undoes_id}

    days = max((until - since) / DAY, 1e-9)
    per_day = len(succeeded) / days
    frequency = Figure(per_day, "per day", frequency_tier(per_day), len(succeeded))

    lead_hours = [
        (d.finished_at - committed).total_seconds() / 3600
        for d in succeeded
        if d.finished_at is not None and (committed := _committed_at(d)) is not None
    ]
    lead = _median(lead_hours, "hours", lead_time_tier)

    finished = [d for d in changes if d.phase == Phase.SUCCEEDED.value or d.phase in FAILED]
    failures = [d for d in finished if d.phase in FAILED or d.id in undone]
    rate = len(failures) / len(finished) if finished else None
    failure_rate = Figure(rate, "ratio", None if rate is None else change_failure_tier(rate), len(finished))

    recovery_hours = []
    for failure in failures:
        failed_at = undone[failure.id].created_at if failure.id in undone else failure.finished_at
        recovered = next(
            (
                d
                for d in rows
                if d.phase == Phase.SUCCEEDED.value
                and d.service == failure.service
                and d.environment == failure.environment
                and d.id != failure.id
                and d.finished_at is not None
                and failed_at is not None
                and d.finished_at > failed_at
            ),
            None,
        )
        if recovered is not None and recovered.finished_at is not None and failed_at is not None:
            recovery_hours.append((recovered.finished_at - failed_at).total_seconds() / 3600)
    recovery = _median(recovery_hours, "hours", recovery_tier)
    return Stats(since, until, service, environment, frequency, lead, failure_rate, recovery)


def _committed_at(deployment: Deployment) -> datetime | None:
    return deployment.release.committed_at


def _median(values: list[float], unit: str, tier: Callable[[float], str]) -> Figure:
    if not values:
        return Figure(None, unit, None, 0)
    middle = statistics.median(values)
    return Figure(middle, unit, tier(middle), len(values))


def trend(
    session: Session,
    *,
    since: datetime,
    until: datetime,
    buckets: int,
    service: str | None = None,
    environment: str | None = None,
) -> list[Stats]:
    """The window cut into `buckets` equal, consecutive windows, each computed as `compute` computes a
    window: how the four keys moved (the dashboard's small charts)."""
    if buckets < 1:
        raise ValueError(f"buckets must be at least 1, not {buckets}")
    width = (until - since) / buckets
    return [
        compute(
            session,
            since=since + width * index,
            until=since + width * (index + 1),
            service=service,
            environment=environment,
        )
        for index in range(buckets)
    ]
