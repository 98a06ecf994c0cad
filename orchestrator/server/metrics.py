"""`/metrics` in Prometheus' text format: the server's requests, and the rollouts as the store records them.

One `CollectorRegistry` per application (`app.state.metrics.registry`), not the process-global default, so
two applications in one process (tests, benchmarks) count apart; other parts of the server (webhooks, the
queue) register their own collectors on it.

- Requests are counted and timed by a middleware, labelled by the route's template (`/api/v1/deployments/
  {ref}`), never by the raw path, so ids do not multiply the series.
- Webhook deliveries are counted by source and outcome where the routes answer them (`webhooks.py`):
  queued, ignored, ping, duplicate, and the refusals (unauthorized, malformed, too_large, unconfigured).
  Counted per server process, as requests are; Prometheus sums the processes.
- Labelled series start at zero where their labels are known beforehand (webhook sources and outcomes,
  gate outcomes, and the rollout series of the checkout's environments and of every environment the store
  has deployments in): Prometheus' `increase()` ignores a series' first sample, so a counter born at 1
  would hide the first event the dashboard is there to show.
- Deployments by phase and environment are read from the store at each scrape: one GROUP BY, true
  whichever process or worker moved them.
- Queue depth is asked of the jobs (`app.state.jobs.depth()`) at each scrape: pgqueuer's own statistics
  query on Postgres, so every worker's jobs are counted; the server's own threads on SQLite. When it cannot
  be read (the queue not installed) the scrape goes on without it and `/readyz` says why.
- Step and gate durations come from the audit trail, which every driver writes wherever it runs: each
  scrape reads the events appended since the last one (by their increasing id) and observes, for every
  `step_completed`, the time since the step began (its `step_started`, else the previous step's end or the
  rollout's start or resumption), and for every analysis step (one with measurements) the time from its
  start to its end — passed when it completed, failed or inconclusive when the rollout stopped there —
  and, for every deployment that ends (Succeeded, RolledBack, Failed, Aborted), its rollout's duration,
  from its `started_at` to the event's time, by environment and phase (the start is the row's, so a
  rollout that began before the server did is measured whole).
  The histograms count from the server's start (the trail before it is not replayed, so a restart is
  a counter reset, as Prometheus expects). Events are read once they are `SETTLE_SECONDS` old: on
  Postgres an event's id is drawn before its transaction commits, so a younger event with a smaller id
  than one already read may still become visible; waiting that long lets every transaction that drew
  one commit first.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orchestrator.logs import get_logger
from orchestrator.store import queue
from orchestrator.store.models import Deployment, DeploymentEvent, Phase

log = get_logger(__name__)

STEP_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
ROLLOUT_BUCKETS = (1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 43200, 86400)
SETTLE_SECONDS = 2.0
EVENTS_PER_SCRAPE = 5000  # a scrape after a long silence catches up over several scrapes, not one long one


class DeploymentPhases(Collector):
    """`orchestrator_deployments{phase, environment}`: how many deployments stand in each phase now."""

    def __init__(
        self, sessions: sessionmaker[Session], seen: Callable[[Iterable[str]], None] = lambda _: None
    ) -> None:
        self.sessions = sessions
        self.seen = seen  # told the environments the store has deployments in, at every scrape

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "orchestrator_deployments",
            "Deployments in each phase, per environment, as the store records them",
            labels=["phase", "environment"],
        )
        query = select(Deployment.phase, Deployment.environment, func.count()).group_by(
            Deployment.phase, Deployment.environment
        )
        with self.sessions() as session:
            rows = session.execute(query).all()
        environments = sorted({environment for _, environment, _ in rows})
        self.seen(environments)
        counts = {(phase, environment): count for phase, environment, count in rows}
        for environment in environments:
            for phase in Phase:
                family.add_metric([phase.value, environment], counts.get((phase.value, environment), 0))
        yield family


class QueueDepth(Collector):
    """`orchestrator_queue_jobs{entrypoint, status}`: the jobs not done yet, as the jobs report them."""

    def __init__(self, depth: Callable[[], Mapping[tuple[str, str], int]]) -> None:
        self.depth = depth

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "orchestrator_queue_jobs",
            "Rollout jobs not done yet, by entrypoint and status (queued, picked)",
            labels=["entrypoint", "status"],
        )
        try:
            counts = dict(self.depth())
        except Exception as exc:  # the queue not installed, say: /readyz tells; the other series go out
            log.warning("queue_depth_unavailable", error=type(exc).__name__)
            return
        # Both kinds and both live statuses always, so an empty queue is a 0, not a missing series.
        for entrypoint in (queue.REQUEST_JOB, queue.ROLLOUT_JOB):
            for status in ("queued", "picked"):
                counts.setdefault((entrypoint, status), 0)
        for (entrypoint, status), count in sorted(counts.items()):
            family.add_metric([entrypoint, status], count)
        yield family


@dataclass
class _Rollout:
    """What the trail has said so far of one deployment that is still going."""

    mark: datetime | None = None  # when the current step began (as far as the trail tells)
    step_started: dict[int, datetime] = field(default_factory=dict)
    gate_step: int | None = None  # an analysis step with measurements, not finished yet


class TrailDurations:
    """Step and gate durations, observed from the audit trail as it grows (see the module's docstring)."""

    def __init__(self, sessions: sessionmaker[Session], registry: CollectorRegistry) -> None:
        self.sessions = sessions
        self._last_id = self._newest_id()
        self.steps = Histogram(
            "orchestrator_step_duration_seconds",
            "How long each rollout step took, from its start to its completion",
            buckets=STEP_BUCKETS,
            registry=registry,
        )
        self.gates = Histogram(
            "orchestrator_gate_duration_seconds",
            "How long each analysis gate measured before it decided",
            labelnames=["outcome"],
            buckets=STEP_BUCKETS,
            registry=registry,
        )
        self.rollouts = Histogram(
            "orchestrator_rollout_duration_seconds",
            "How long each rollout ran, from its start to the phase it ended in",
            labelnames=["environment", "phase"],
            buckets=ROLLOUT_BUCKETS,
            registry=registry,
        )
        for outcome in GATE_OUTCOMES:
            self.gates.labels(outcome=outcome)
        self._prepared: set[str] = set()
        self._rollouts: dict[uuid.UUID, _Rollout] = {}
        self._lock = threading.Lock()

    def _newest_id(self) -> int:
        try:
            with self.sessions() as session:
                return int(session.execute(select(func.max(DeploymentEvent.id))).scalar() or 0)
        except Exception:  # the database is not reachable yet (`/readyz` says so): count from the start
            return 0

    def catch_up(self) -> None:
        settled = datetime.now(UTC) - timedelta(seconds=SETTLE_SECONDS)
        with self._lock:
            query = (
                select(
                    DeploymentEvent.id,
                    DeploymentEvent.deployment_id,
                    DeploymentEvent.type,
                    DeploymentEvent.step,
                    DeploymentEvent.data,
                    DeploymentEvent.created_at,
                    Deployment.environment,
                    Deployment.started_at,
                )
                .join(Deployment, Deployment.id == DeploymentEvent.deployment_id)
                .where(DeploymentEvent.id > self._last_id, DeploymentEvent.created_at <= settled)
                .order_by(DeploymentEvent.id)
                .limit(EVENTS_PER_SCRAPE)
            )
            with self.sessions() as session:
                rows = session.execute(query).all()
            for row in rows:
                self._observe(row.deployment_id, row.type, row.step, row.data or {}, row.created_at)
                if row.type == "phase":
                    self._ended(row.environment, row.started_at, (row.data or {}).get("to"), row.created_at)
                self._last_id = row.id

    def prepare(self, environments: Iterable[str]) -> None:
        """Start the rollout series of these environments at zero: `increase()` counts nothing for a series
        whose first sample is already 1, so a series born with the first rollout that ends would hide it."""
        for environment in set(environments) - self._prepared:
            for phase in _STOPPED_NAMES:
                self.rollouts.labels(environment=environment, phase=phase)
            self._prepared.add(environment)

    def _ended(self, environment: str, started: datetime | None, phase: object, at: datetime) -> None:
        """A rollout's duration once its deployment ends (one that never started is not a rollout)."""
        if started is None or phase not in _STOPPED_NAMES:
            return
        self.rollouts.labels(environment=environment, phase=str(phase)).observe(
            max(0.0, (at - started).total_seconds())
        )

    def _observe(
        self, deployment: uuid.UUID, kind: str, step: int | None, data: dict[str, Any], at: datetime
    ) -> None:
        rollout = self._rollouts.setdefault(deployment, _Rollout())
        if kind == "phase":
            to = data.get("to")
            if to == Phase.PROGRESSING.value:
                rollout.mark = at  # started, resumed or approved: the current step (re)starts its clock
            elif to in (Phase.PAUSED.value, *(p.value for p in _STOPPED)):
                if rollout.gate_step is not None:
                    outcome = "inconclusive" if to == Phase.PAUSED.value else "failed"
                    self._gate(rollout, rollout.gate_step, at, outcome)
                if to != Phase.PAUSED.value:
                    self._rollouts.pop(deployment, None)
            return
        if kind == "step_started" and step is not None:
            rollout.step_started.setdefault(step, at)
            rollout.mark = rollout.mark or at
        elif kind == "measurement" and step is not None:
            rollout.gate_step = step
        elif kind == "step_completed" and step is not None:
            began = rollout.step_started.get(step) or rollout.mark
            if began is not None:
                self.steps.observe(max(0.0, (at - began).total_seconds()))
            if rollout.gate_step == step:
                self._gate(rollout, step, at, "passed")
            rollout.step_started.pop(step, None)
            rollout.mark = at

    def _gate(self, rollout: _Rollout, step: int, at: datetime, outcome: str) -> None:
        began = rollout.step_started.get(step) or rollout.mark
        if began is not None:
            self.gates.labels(outcome=outcome).observe(max(0.0, (at - began).total_seconds()))
        rollout.gate_step = None


_STOPPED = (Phase.SUCCEEDED, Phase.FAILED, Phase.ROLLED_BACK, Phase.ABORTED)
_STOPPED_NAMES = frozenset(p.value for p in _STOPPED)
GATE_OUTCOMES = ("passed", "failed", "inconclusive")
WEBHOOK_SOURCES = ("github", "registry")
WEBHOOK_OUTCOMES = (
    "queued",
    "ignored",
    "ping",
    "duplicate",
    "unauthorized",
    "malformed",
    "too_large",
    "unconfigured",
    "error",
)


class Metrics:
    """The application's registry and the collectors this module owns."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        queue_depth: Callable[[], Mapping[tuple[str, str], int]],
        environments: Iterable[str] = (),
    ) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "orchestrator_http_requests",
            "HTTP requests answered, by method, route and status",
            labelnames=["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "orchestrator_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route",
            labelnames=["method", "route"],
            registry=self.registry,
        )
        self.webhooks = Counter(
            "orchestrator_webhook_deliveries",
            "Webhook deliveries answered, by source and outcome",
            labelnames=["source", "outcome"],
            registry=self.registry,
        )
        for source in WEBHOOK_SOURCES:  # every series from zero, so increase() sees the first delivery
            for outcome in WEBHOOK_OUTCOMES:
                self.webhooks.labels(source=source, outcome=outcome)
        self.trail = TrailDurations(sessions, self.registry)
        self.trail.prepare(environments)
        self.registry.register(DeploymentPhases(sessions, seen=self.trail.prepare))
        self.registry.register(QueueDepth(queue_depth))

    def exposition(self) -> bytes:
        from prometheus_client import generate_latest

        self.trail.catch_up()
        return generate_latest(self.registry)


class CountRequests:
    """Counts and times every HTTP request into the application's `Metrics` (`app.add_middleware`).

    A plain ASGI middleware, not Starlette's `BaseHTTPMiddleware`: that one runs the rest of the
    application in a task group of its own and re-streams each response through memory streams, which on
    the webhook's hot path cost more CPU than the route itself did (benchmarks/webhooks.py)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets when the application raises before it answers

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = _template(scope)  # the router put the matched route in this same scope
            self.metrics.requests.labels(scope["method"], route, str(status)).inc()
            self.metrics.latency.labels(scope["method"], route).observe(time.perf_counter() - started)


def _template(scope: Scope) -> str:
    """The matched route's path template, its router's prefix included: a route knows only its path inside
    its router (`/deployments/{ref}`), so the prefix is taken from the request's path, which has as many
    segments after it as the template has (no route here takes a parameter that spans segments)."""
    route = scope.get("route")
    inner = getattr(route, "path", None)
    if not isinstance(inner, str):
        return "unmatched"
    segments, tail = str(scope["path"]).split("/"), inner.split("/")[1:]
    if len(segments) < len(tail):
        return inner
    return "/".join(segments[: len(segments) - len(tail)] + tail) or "/"
