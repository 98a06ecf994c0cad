"""The notifier: tails the audit trail, records the deliveries each phase change owes, and sends them.

The engine's transitions are untouched: every phase change is already a `phase` event, committed in the
transaction that made the change (`repository.set_phase`). The notifier reads events after its cursor,
so it only ever sees committed changes, and for each phase change records one delivery per destination
that wants it (`destinations.wanted`) in the outbox (`notification_deliveries`, unique per event and
destination). It then sends what is due: claim a row, send (outside any transaction), record the outcome.
A failure is retried with exponential backoff up to a bound, then recorded failed; nothing is raised to
the rollout, which never waits for a notification (the notifier has its own thread, or runs in a worker).

Several processes may tail at once (a CLI and the server's workers): the unique key makes a delivery be
recorded once, a claim (an UPDATE that only matches an unclaimed pending row) makes it be sent by one, and
the cursor only moves forward. On Postgres two transactions can commit their events out of id order, so
the cursor stays behind events younger than `settle_seconds` and those are read again (this process
remembers which it recorded; another's insert of the same row does nothing). A destination hears about
one deployment in order: a delivery waits while an earlier one of the same deployment to the same
destination is pending (GitHub statuses must not overtake each other).

`start()` / `stop(flush_seconds=)` are the API the CLI (`runtime.notifications`) and the server's
workers use; `run_once()` is one pass, for tests on a fake clock.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import requests
from sqlalchemy import Connection
from sqlalchemy.orm import Session, sessionmaker

from orchestrator.config import Environment, Pipeline, Project
from orchestrator.errors import OrchestratorError
from orchestrator.logs import get_logger
from orchestrator.notify.destinations import (
    GITHUB,
    GitHubSender,
    notification_named,
    send_notification,
    wanted,
)
from orchestrator.notify.facts import gather, public_url
from orchestrator.notify.hooks import CLOUDFLARE, HOOK, hook_named, send_hook, served_hosts
from orchestrator.notify.triggers import PHASE_EVENT
from orchestrator.outbound.send import DEFAULT_TIMEOUT_SECONDS, DeliveryError
from orchestrator.rollout.drift_alerts import DRIFT_EVENT
from orchestrator.store import notifications as outbox
from orchestrator.store.db import engine_of
from orchestrator.store.models import DeliveryStatus

log = get_logger(__name__)

PAGE = 500  # events read per query
MAX_AGE_SECONDS = 24 * 3600.0  # a phase change older than this when first read is not announced
SETTLE_SECONDS = 30.0
ANNOUNCED = (PHASE_EVENT, DRIFT_EVENT)  # the audit events destinations are told about
CLAIM_SECONDS = 120.0  # a claimed delivery another process may take over after this (its sender died)


class Clock(Protocol):
    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class _WallClock:
    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@dataclass(frozen=True)
class RetryPolicy:
    """`attempts` tries in all; after failure n the wait is first_delay * 2^(n-1), at most max_delay."""

    attempts: int
    first_delay: float
    max_delay: float

    def delay(self, failures: int) -> float:
        return float(min(self.first_delay * 2 ** max(failures - 1, 0), self.max_delay))


# Slack and webhooks: 6 tries over about half a minute (1, 2, 4, 8, 16 s between them).
NOTIFICATION_RETRY = RetryPolicy(attempts=6, first_delay=1.0, max_delay=60.0)
# GitHub: statuses catch up after an outage of up to about half an hour (2 s doubling to 5 min, 12 tries).
GITHUB_RETRY = RetryPolicy(attempts=12, first_delay=2.0, max_delay=300.0)


def _owner() -> str:
    import os
    import socket

    return f"{socket.gethostname()}:pid {os.getpid()}:{uuid.uuid4().hex[:8]}"


class Notifier:
    def __init__(
        self,
        project: Project,
        sessions: sessionmaker[Session],
        *,
        clock: Clock | None = None,
        retry: RetryPolicy = NOTIFICATION_RETRY,
        github_retry: RetryPolicy = GITHUB_RETRY,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        poll_interval: float = 1.0,
        base_url: str | None = None,
        owner: str | None = None,
    ) -> None:
        self.project = project
        self.sessions = sessions
        self.database = engine_of(sessions)
        self.clock = clock or _WallClock()
        self.retry = retry
        self.github_retry = github_retry
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.base_url = base_url if base_url is not None else public_url()
        self.owner = owner or _owner()
        self.http = requests.Session()
        self.github = GitHubSender(project.root, self.base_url)
        self._seen: set[int] = set()  # phase events whose deliveries this process recorded
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- the thread -------------------------------------------------------------------------------------

    def start(self) -> Notifier:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="notifier", daemon=True)
            self._thread.start()
        return self

    def stop(self, *, flush_seconds: float = 0.0) -> None:
        """Stop the thread; then, for at most `flush_seconds`, deliver what is due (waiting for retries
        that fall within that time). What is still pending stays in the outbox for the next notifier."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout + 5)
            if self._thread.is_alive():
                # Still inside a send (a destination slower than its timeout): leave it be rather than send
                # beside it; a daemon thread does not hold the process.
                log.warning("notifier_still_sending", owner=self.owner)
                return
            self._thread = None
        if flush_seconds > 0:
            self.flush(flush_seconds)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.run_once()
            self._stop.wait(self.poll_interval)

    def flush(self, seconds: float) -> None:
        deadline = self.clock.now() + seconds
        while True:
            self.run_once()
            now = self.clock.now()
            if now >= deadline:
                return
            try:
                with self.database.connect() as connection:
                    left = outbox.pending_count(connection, before=_moment(deadline))
            except Exception:
                log.warning("notifier_flush_failed", exc_info=True)
                return
            if left == 0:
                return
            self.clock.sleep(min(self.poll_interval, deadline - now))

    # --- one pass ---------------------------------------------------------------------------------------

    def run_once(self) -> int:
        """Record what new phase changes owe, then send what is due; the number of attempts made. Never
        raises: a database or destination problem is logged, and the next pass tries again."""
        try:
            self.scan()
            return self.deliver_due()
        except Exception:
            log.warning("notifier_pass_failed", exc_info=True)
            return 0

    def _now(self) -> datetime:
        return _moment(self.clock.now())

    def scan(self) -> int:
        """Record the deliveries owed by phase changes after the cursor; the number recorded."""
        now = self._now()
        with self.database.connect() as connection:
            cursor = outbox.read_cursor(connection)
        settled, unsettled, after, recorded = cursor, False, cursor, 0
        while True:
            with self.database.connect() as connection:
                events = outbox.events_after(connection, after, limit=PAGE)
                fresh = [e for e in events if e.type in ANNOUNCED and e.id not in self._seen]
                ids = list({e.deployment_id for e in fresh})
                environments = outbox.environments_of(connection, ids)
                services = outbox.services_of(connection, ids)
            rows: list[dict[str, Any]] = []
            for event in fresh:
                if event.created_at < now - timedelta(seconds=MAX_AGE_SECONDS):
                    continue
                environment = self._environment(environments.get(event.deployment_id))
                if environment is None:
                    continue
                pipeline = self._pipeline(services.get(event.deployment_id))
                for owed in wanted(environment, event.data, pipeline, event_type=event.type):
                    rows.append(
                        {
                            "event_id": event.id,
                            "deployment_id": event.deployment_id,
                            "destination": owed.destination,
                            "kind": owed.kind,
                            "trigger": owed.trigger,
                            "next_attempt_at": now,
                            "created_at": now,
                        }
                    )
            if rows:
                with self.database.begin() as connection:
                    outbox.enqueue(connection, rows)
                recorded += len(rows)
            self._seen.update(e.id for e in fresh)
            for event in events:
                if unsettled or event.created_at > now - timedelta(seconds=SETTLE_SECONDS):
                    unsettled = True
                else:
                    settled = event.id
            if len(events) < PAGE:
                break
            after = events[-1].id
        if settled > cursor:
            with self.database.begin() as connection:
                outbox.advance_cursor(connection, settled, now=now)
            self._seen = {seen for seen in self._seen if seen > settled}
        return recorded

    def _pipeline(self, service: str | None) -> Pipeline | None:
        if service is None:
            return None
        try:
            return self.project.pipeline(service)
        except OrchestratorError:
            return None  # a service no longer in the checkout has no hooks to call

    def _environment(self, name: str | None) -> Environment | None:
        if name is None:
            return None
        try:
            return self.project.environment(name)
        except OrchestratorError:
            return None  # an environment no longer in the checkout has no destinations to tell

    def deliver_due(self) -> int:
        attempts = 0
        while not self._stop.is_set() or self._thread is None:
            with self.database.connect() as connection:
                batch = outbox.due(connection, now=self._now())
            if not batch:
                break
            made = sum(self._attempt(delivery) for delivery in batch)
            attempts += made
            if made == 0:
                break  # everything due is held by another process
        return attempts

    def _attempt(self, delivery: outbox.Delivery) -> int:
        now = self._now()
        with self.database.begin() as connection:
            if not outbox.claim(
                connection,
                delivery.id,
                owner=self.owner,
                now=now,
                until=now + timedelta(seconds=CLAIM_SECONDS),
            ):
                return 0
        failures = delivery.attempts + 1
        policy = self.github_retry if delivery.kind == GITHUB else self.retry
        try:
            self._send(delivery)
        except Exception as exc:
            error = str(exc) if isinstance(exc, OrchestratorError) else f"unexpected {type(exc).__name__}"
            if not isinstance(exc, OrchestratorError):
                log.warning("notification_bug", delivery=delivery.id, exc_info=True)
            final = failures >= policy.attempts
            after = self._now()
            with self.database.begin() as connection:
                outbox.record_attempt(
                    connection,
                    delivery.id,
                    owner=self.owner,
                    status=DeliveryStatus.FAILED if final else DeliveryStatus.PENDING,
                    attempts=failures,
                    now=after,
                    next_attempt_at=None if final else after + timedelta(seconds=policy.delay(failures)),
                    error=error,
                )
            log.info(
                "notification_failed" if final else "notification_retry",
                destination=delivery.destination,
                deployment=str(delivery.deployment_id),
                attempt=failures,
                error=error,
            )
        else:
            with self.database.begin() as connection:
                outbox.record_attempt(
                    connection,
                    delivery.id,
                    owner=self.owner,
                    status=DeliveryStatus.DELIVERED,
                    attempts=failures,
                    now=self._now(),
                )
            log.info("notification_delivered", destination=delivery.destination, attempt=failures)
        return 1

    def _send(self, delivery: outbox.Delivery) -> None:
        with self.sessions() as session:
            facts = gather(
                session,
                delivery.event_id,
                trigger=None if delivery.kind == GITHUB else delivery.trigger,
                base_url=self.base_url,
            )
            data = outbox.event_of(session.connection(), delivery.event_id).data
        environment = self._environment(facts.environment)
        if environment is None:
            raise DeliveryError(
                f"{delivery.destination}: environment {facts.environment} is no longer configured"
            )
        if delivery.kind == GITHUB:
            if environment.github is None:
                raise DeliveryError(f"github: no longer configured in environment {environment.name}")
            self.github.send(self._begin, environment.github, facts, data, now=self._now)
        elif delivery.kind in (HOOK, CLOUDFLARE):
            pipeline = self._pipeline(facts.service)
            if pipeline is None:
                raise DeliveryError(
                    f"{delivery.destination}: service {facts.service} is no longer configured"
                )
            stage, hook = hook_named(pipeline, delivery.destination)
            with self.database.connect() as connection:
                plan = outbox.plan_of(connection, delivery.deployment_id) or {}
            send_hook(self.http, stage, hook, facts.to_json(), hosts=served_hosts(plan.get("sets") or []))
        else:
            notification = notification_named(environment, delivery.destination)
            send_notification(self.http, notification, facts, timeout=self.timeout)

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        with self.database.begin() as connection:
            yield connection


def _moment(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
