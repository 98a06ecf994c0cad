"""Recording webhook deliveries durably, many per transaction (group commit).

A delivery is answered only once it is committed: its row (unique on source + delivery id, so a redelivery
is found), the rollout requests it asks for and their queue jobs. A commit is a WAL flush, milliseconds on
a loaded machine, and one transaction per delivery made the server spend its time on round trips and
flushes (benchmarks/webhooks.py). So one writer thread records whatever deliveries are waiting in one
transaction: a delivery arriving while a batch commits waits for that commit and goes in the next batch,
with the others that arrived meanwhile. Nothing waits on purpose: a delivery alone is written at once, and
under load a batch is as large as what arrived during the previous commit. Every answer still follows the
commit that holds its delivery, so a 202 still means durably queued.

Each batch is three statements whatever its size: the deliveries (`ON CONFLICT DO NOTHING` on the unique
source + delivery id: a delivery already recorded, by this process or any other, returns no row and is a
duplicate), the requests, and their jobs (`RolloutJobs.enqueue_requests`: pgqueuer's batch INSERT on
Postgres). A batch that fails is written again one delivery at a time, so one bad delivery fails alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import Column, Connection, String, Text, bindparam, insert, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from orchestrator.server.decision import Decision
from orchestrator.server.jobs import RolloutJobs
from orchestrator.store.models import RequestStatus, RolloutRequest, WebhookDelivery, utcnow

log = structlog.get_logger(__name__)

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


_DELIVERY_COLUMNS = ("source", "delivery_id", "event", "repository", "outcome", "reason")
_REQUEST_COLUMNS = (
    "delivery_id", "service", "environment", "event", "git_commit", "digest", "built_repository", "actor"
)  # fmt: skip


def _array_of(column: Column[Any]) -> postgresql.ARRAY[Any]:
    """The array parameter's type for a column: strings unsized, since the driver casts the parameter to
    it and an explicit cast to varchar(n) truncates silently, where inserting into the column refuses a
    value too long, as a plain INSERT does."""
    return postgresql.ARRAY(Text() if isinstance(column.type, String) else column.type)


# On Postgres each list of values is one array parameter and the statements' text never changes with the
# batch's size, so psycopg and the server parse and plan them once (a VALUES list per batch size was half
# the writer's CPU). Requests come back in the order they were listed: the sequence numbers the rows in
# the order the SELECT hands them over (ORDER BY the ordinality), the guarantee SQLAlchemy's own
# `sort_by_parameter_order` relies on for Postgres.
_PG_DELIVERIES = text(
    f"INSERT INTO {_DELIVERIES.name} ({', '.join(_DELIVERY_COLUMNS)}, received_at) "
    f"SELECT {', '.join(f'u.{c}' for c in _DELIVERY_COLUMNS)}, :now "
    f"FROM unnest({', '.join(f':{c}' for c in _DELIVERY_COLUMNS)}) "
    f"WITH ORDINALITY AS u({', '.join(_DELIVERY_COLUMNS)}, ord) ORDER BY u.ord "
    "ON CONFLICT (source, delivery_id) DO NOTHING RETURNING id, source, delivery_id"
).bindparams(
    *(bindparam(c, type_=_array_of(_DELIVERIES.c[c])) for c in _DELIVERY_COLUMNS),
    bindparam("now", type_=_DELIVERIES.c.received_at.type),
)
_PG_REQUESTS = text(
    f"INSERT INTO {_REQUESTS.name} ({', '.join(_REQUEST_COLUMNS)}, status, created_at, updated_at) "
    f"SELECT {', '.join(f'u.{c}' for c in _REQUEST_COLUMNS)}, :status, :now, :now "
    f"FROM unnest({', '.join(f':{c}' for c in _REQUEST_COLUMNS)}) "
    f"WITH ORDINALITY AS u({', '.join(_REQUEST_COLUMNS)}, ord) ORDER BY u.ord RETURNING id"
).bindparams(
    *(bindparam(c, type_=_array_of(_REQUESTS.c[c])) for c in _REQUEST_COLUMNS),
    bindparam("now", type_=_REQUESTS.c.created_at.type),
)
# Elsewhere (SQLite): SQLAlchemy's many-rows INSERT, which keeps RETURNING in the parameters' order.
_SQLITE_DELIVERIES = (
    sqlite.insert(_DELIVERIES)
    .on_conflict_do_nothing(index_elements=[_DELIVERIES.c.source, _DELIVERIES.c.delivery_id])
    .returning(_DELIVERIES.c.id, _DELIVERIES.c.source, _DELIVERIES.c.delivery_id)
)
_SQLITE_REQUESTS = insert(_REQUESTS).returning(_REQUESTS.c.id, sort_by_parameter_order=True)


def _insert(connection: Connection, rows: list[dict[str, Any]], columns: tuple[str, ...], kind: str) -> Any:
    """Run the deliveries' or the requests' INSERT for `rows`; its result (rows returned, in order)."""
    if connection.dialect.name == "postgresql":
        statement = _PG_DELIVERIES if kind == "deliveries" else _PG_REQUESTS
        params: dict[str, Any] = {c: [row[c] for row in rows] for c in columns}
        params["now"] = utcnow()
        if kind == "requests":
            params["status"] = RequestStatus.QUEUED.value
        return connection.execute(statement, params)
    return connection.execute(_SQLITE_DELIVERIES if kind == "deliveries" else _SQLITE_REQUESTS, rows)


def write(
    sessions: sessionmaker[Session], jobs: RolloutJobs, deliveries: Sequence[Delivery]
) -> list[Recorded]:
    """Record `deliveries` in one transaction; what each did, in their order. A delivery id repeated in the
    batch is recorded once (the first) and the others are duplicates."""
    first: dict[tuple[str, str], int] = {}
    for index, delivery in enumerate(deliveries):
        first.setdefault(delivery.key, index)
    fresh = [deliveries[i] for i in sorted(first.values())]
    with sessions.begin() as session:
        connection = session.connection()
        rows = _insert(
            connection,
            [
                {
                    "source": d.source,
                    "delivery_id": d.delivery_id,
                    "event": d.decision.event[:50],
                    "repository": d.decision.repository[:512] if d.decision.repository else None,
                    "outcome": d.decision.outcome.value,
                    "reason": d.decision.reason,
                }
                for d in fresh
            ],
            _DELIVERY_COLUMNS,
            "deliveries",
        ).all()
        recorded = {(row.source, row.delivery_id): int(row.id) for row in rows}
        wanted = [
            {
                "delivery_id": recorded[d.key],
                "service": w.service,
                "environment": w.environment,
                "event": d.decision.event[:50],
                "git_commit": w.git_commit,
                "digest": w.digest,
                "built_repository": w.built_repository,
                "actor": "github" if d.source == "github" else "registry",
            }
            for d in fresh
            if d.key in recorded
            for w in d.decision.wanted
        ]
        # Sorted: the ids were drawn in the order the rows were listed (see _PG_REQUESTS).
        ids = (
            sorted(int(i) for i in _insert(connection, wanted, _REQUEST_COLUMNS, "requests").scalars())
            if wanted
            else []
        )
        if ids:
            jobs.enqueue_requests(session, ids)
    # Hand the ids out in the order the requests were listed: each new delivery's wanted, in turn.
    handed = iter(ids)
    answers: dict[tuple[str, str], Recorded] = {}
    for d in fresh:
        if d.key in recorded:
            answers[d.key] = Recorded(d.decision.outcome.value, [next(handed) for _ in d.decision.wanted])
    return [
        answers[d.key] if i == first[d.key] and d.key in answers else Recorded(DUPLICATE, [])
        for i, d in enumerate(deliveries)
    ]


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
        while True:
            with self._lock:
                while not self._waiting and not self._closed:
                    self._arrived.wait()
                if not self._waiting:
                    return
                batch, self._waiting = self._waiting[: self.max_batch], self._waiting[self.max_batch :]
            self._settle(batch, self._write(batch))

    def _write(self, batch: list[_Waiting]) -> list[Recorded | BaseException]:
        deliveries = [w.delivery for w in batch]
        try:
            return list(write(self.sessions, self.jobs(), deliveries))
        except Exception as exc:
            if len(batch) == 1:
                return [exc]
            log.warning("webhook_batch_failed", deliveries=len(batch), error=type(exc).__name__)
        # One bad delivery must not fail the others with it: each again in a transaction of its own.
        answers: list[Recorded | BaseException] = []
        for delivery in deliveries:
            try:
                answers.extend(write(self.sessions, self.jobs(), [delivery]))
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
