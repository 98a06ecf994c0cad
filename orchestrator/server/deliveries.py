"""Recording webhook deliveries durably, many per transaction (group commit).

A delivery is answered only once it is committed: its row (unique on source + delivery id, so a redelivery
is found), the rollout requests it asks for and their queue jobs. A commit is a WAL flush, milliseconds on
a loaded machine, and one transaction per delivery made the server spend its time on round trips and
flushes (benchmarks/webhooks.py). So one writer thread records whatever deliveries are waiting in one
transaction: a delivery arriving while a batch commits waits for that commit and goes in the next batch,
with the others that arrived meanwhile. Nothing waits on purpose: a delivery alone is written at once, and
under load a batch is as large as what arrived during the previous commit. Every answer still follows the
commit that holds its delivery, so a 202 still means durably queued.

A delivery already recorded, by this process or any other, is found by the unique index (`ON CONFLICT DO
NOTHING`) and is a duplicate. On Postgres a batch is one statement and pgqueuer's job INSERT, on a
connection the writer keeps (`deliveries_postgres.py`); on SQLite it goes through a Session
(`SessionWriter`). A batch that fails is written again one delivery at a time, so one bad delivery fails
alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from orchestrator.logs import get_logger
from orchestrator.server.decision import Decision
from orchestrator.server.deliveries_postgres import PostgresBatchWriter
from orchestrator.server.jobs import QueueJobs, RolloutJobs
from orchestrator.store.db import engine_of
from orchestrator.store.models import RolloutRequest, WebhookDelivery

log = get_logger(__name__)

MAX_BATCH = 200  # deliveries in one transaction at most (a burst is written in several)
DUPLICATE = "duplicate"

_DELIVERIES = WebhookDelivery.metadata.tables[WebhookDelivery.__tablename__]
_REQUESTS = RolloutRequest.metadata.tables[RolloutRequest.__tablename__]


@dataclass(frozen=True)
class Delivery:
    source: str  # github | registry
    delivery_id: str
    decision: Decision

    @property
    def key(self) -> tuple[str, str]:
        return (self.source, self.delivery_id)

    @property
    def actor(self) -> str:
        """Who its rollout requests are recorded as asked by: the source's name."""
        return "github" if self.source == "github" else "registry"

    def row(self) -> dict[str, Any]:
        """Its `webhook_deliveries` row (event and repository cut to their columns), for either writer."""
        decision = self.decision
        return {
            "source": self.source,
            "delivery_id": self.delivery_id,
            "event": decision.event[:50],
            "repository": decision.repository[:512] if decision.repository else None,
            "outcome": decision.outcome.value,
            "reason": decision.reason,
        }


@dataclass(frozen=True)
class Recorded:
    """What recording a delivery did: its outcome (`duplicate` for a redelivery) and the requests queued."""

    outcome: str
    requests: list[int]


@dataclass
class _Waiting:
    delivery: Delivery
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Recorded]


class SessionWriter:
    """Writes a batch through a SQLAlchemy Session (SQLite; and Postgres with jobs other than the queue's):
    the deliveries in one many-rows INSERT (`ON CONFLICT DO NOTHING`), the requests in another (RETURNING in
    the parameters' order), their jobs with `RolloutJobs.enqueue_requests`."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def write(self, fresh: Sequence[Delivery], jobs: RolloutJobs) -> dict[tuple[str, str], list[int]]:
        with self.sessions.begin() as session:
            connection = session.connection()
            deliveries = _DELIVERIES_INSERT[connection.dialect.name]
            rows = connection.execute(deliveries, [d.row() for d in fresh]).all()
            row_ids = {(row.source, row.delivery_id): int(row.id) for row in rows}
            wanted = [
                {
                    "delivery_id": row_ids[d.key],
                    "service": w.service,
                    "environment": w.environment,
                    "event": d.decision.event[:50],
                    "git_commit": w.git_commit,
                    "digest": w.digest,
                    "built_repository": w.built_repository,
                    "actor": d.actor,
                }
                for d in fresh
                if d.key in row_ids
                for w in d.decision.wanted
            ]
            ids = connection.execute(_REQUESTS_INSERT, wanted).scalars().all() if wanted else []
            if ids:
                jobs.enqueue_requests(session, [int(i) for i in ids])
        handed = iter(int(i) for i in ids)
        return {d.key: [next(handed) for _ in d.decision.wanted] for d in fresh if d.key in row_ids}


# By dialect name: `ON CONFLICT DO NOTHING` is each dialect's own construct.
_DELIVERIES_INSERT = {
    name: dialect.insert(_DELIVERIES)
    .on_conflict_do_nothing(index_elements=[_DELIVERIES.c.source, _DELIVERIES.c.delivery_id])
    .returning(_DELIVERIES.c.id, _DELIVERIES.c.source, _DELIVERIES.c.delivery_id)
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}
_REQUESTS_INSERT = insert(_REQUESTS).returning(_REQUESTS.c.id, sort_by_parameter_order=True)


class Writers:
    """The writer of a batch: on Postgres with the queue's jobs, `PostgresBatchWriter` (its own connection,
    two statements); otherwise `SessionWriter`."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        self.by_session = SessionWriter(sessions)
        self._postgres: PostgresBatchWriter | None = None

    def write(self, deliveries: Sequence[Delivery], jobs: RolloutJobs) -> list[Recorded]:
        """Record `deliveries` in one transaction; what each did, in their order. A delivery id repeated in
        the batch is recorded once (the first) and the others are duplicates."""
        first: dict[tuple[str, str], int] = {}
        for index, delivery in enumerate(deliveries):
            first.setdefault(delivery.key, index)
        fresh = [deliveries[i] for i in sorted(first.values())]
        if isinstance(jobs, QueueJobs) and engine_of(self.sessions).dialect.name == "postgresql":
            if self._postgres is None or self._postgres.jobs is not jobs:
                self.close()
                self._postgres = PostgresBatchWriter(engine_of(self.sessions), jobs)
            recorded = self._postgres.write(fresh)
        else:
            recorded = self.by_session.write(fresh, jobs)
        return [
            Recorded(d.decision.outcome.value, recorded[d.key])
            if i == first[d.key] and d.key in recorded
            else Recorded(DUPLICATE, [])
            for i, d in enumerate(deliveries)
        ]

    def close(self) -> None:
        postgres, self._postgres = self._postgres, None
        if postgres is not None:
            postgres.close()


def write(
    sessions: sessionmaker[Session], jobs: RolloutJobs, deliveries: Sequence[Delivery]
) -> list[Recorded]:
    """Record `deliveries` in one transaction (a writer of their own, closed after)."""
    writers = Writers(sessions)
    try:
        return writers.write(deliveries, jobs)
    finally:
        writers.close()


class DeliveryRecorder:
    """The one writer of this process's deliveries: `await record(delivery)` returns once it is committed."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        jobs: Callable[[], RolloutJobs],
        *,
        max_batch: int = MAX_BATCH,
    ) -> None:
        # `jobs` is looked up at each write: the application's jobs are set after it is made (and tests
        # replace them).
        self.sessions, self.jobs, self.max_batch = sessions, jobs, max_batch
        self._waiting: list[_Waiting] = []
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None
        self._closed = False
        self._writers = Writers(sessions)  # used by the writer thread only

    async def record(self, delivery: Delivery) -> Recorded:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Recorded] = loop.create_future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the delivery recorder is closed")
            self._waiting.append(_Waiting(delivery, loop, future))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="webhook-writer", daemon=True)
                self._thread.start()
            self._arrived.notify()
        return await future

    def close(self) -> None:
        """Write what is waiting, then stop the writer."""
        with self._lock:
            self._closed = True
            self._arrived.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=30)

    def _run(self) -> None:
        try:
            while True:
                with self._lock:
                    while not self._waiting and not self._closed:
                        self._arrived.wait()
                    if not self._waiting:
                        return
                    batch, self._waiting = self._waiting[: self.max_batch], self._waiting[self.max_batch :]
                self._settle(batch, self._write(batch))
        finally:
            self._writers.close()

    def _write(self, batch: list[_Waiting]) -> list[Recorded | BaseException]:
        deliveries = [w.delivery for w in batch]
        try:
            return list(self._writers.write(deliveries, self.jobs()))
        except Exception as exc:
            if len(batch) == 1:
                return [exc]
            log.warning("webhook_batch_failed", deliveries=len(batch), error=type(exc).__name__)
        # One bad delivery must not fail the others with it: each again in a transaction of its own.
        answers: list[Recorded | BaseException] = []
        for delivery in deliveries:
            try:
                answers.extend(self._writers.write([delivery], self.jobs()))
            except Exception as exc:
                answers.append(exc)
        return answers

    @staticmethod
    def _settle(batch: list[_Waiting], answers: list[Recorded | BaseException]) -> None:
        # One wake-up per event loop per batch, not one per delivery.
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Recorded], Any]]] = {}
        for waiting, answer in zip(batch, answers, strict=True):
            by_loop.setdefault(waiting.loop, []).append((waiting.future, answer))
        for loop, settled in by_loop.items():
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits for these answers
                loop.call_soon_threadsafe(_resolve, settled)


def _resolve(settled: list[tuple[asyncio.Future[Recorded], Any]]) -> None:
    for future, answer in settled:
        if future.done():  # the request was cancelled (its client went away)
            continue
        if isinstance(answer, BaseException):
            future.set_exception(answer)
        else:
            future.set_result(answer)
