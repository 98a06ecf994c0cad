"""A batch of webhook deliveries written on Postgres: one statement and pgqueuer's INSERT, on one connection.

The writer thread keeps one connection of the engine's pool for its life (no checkout, pre-ping or Session
per batch) and writes each batch with psycopg directly, in one transaction of two statements:

1. one statement of data-modifying CTEs: the deliveries (`ON CONFLICT DO NOTHING` on the unique source +
   delivery id: a delivery already recorded, by this process or any other, returns no row), the rollout
   requests of the deliveries just inserted (joined to their rows, so a duplicate's are never written), and
   a SELECT of both, so the writer learns in one round trip which deliveries are new and each one's request
   ids;
2. pgqueuer's own batch INSERT of one job per request (`QueueJobs.enqueue_requests_on`);

then the commit. The batch's rows travel as two JSON arrays of arrays (the deliveries, the requests), one
text parameter each: the statement's text never changes with the batch's size, so the server prepares it
once, and `json.dumps` (C) serialises a batch faster than psycopg dumps fifteen text arrays element by
element. Values come out as `text` (`->>`), never cast to a sized `varchar(n)`: that cast truncates
silently, where inserting a too-long value into the column is refused, as a plain INSERT is. Why not
SQLAlchemy: its Session, pool checkout with pre-ping and result machinery were most of the writer's CPU,
and the writer shares the server's one GIL with the event loop (benchmarks/webhooks.py,
docs/benchmarks.md).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine

from orchestrator.store import queue
from orchestrator.store.models import RequestStatus, RolloutRequest, WebhookDelivery, utcnow

if TYPE_CHECKING:
    from orchestrator.server.deliveries import Delivery
    from orchestrator.server.jobs import QueueJobs

_DELIVERIES = WebhookDelivery.__tablename__
_REQUESTS = RolloutRequest.__tablename__
_DELIVERY_COLUMNS = ("source", "delivery_id", "event", "repository", "outcome", "reason")
# Each request names its delivery by source and delivery id (`of_source`, `of_delivery`): joined to the
# deliveries inserted, it gets their row id, and a duplicate's requests match no row.
_WANTED_COLUMNS = (
    "of_source", "of_delivery", "service", "environment", "event", "git_commit", "digest",
    "built_repository", "actor",
)  # fmt: skip
_REQUEST_COLUMNS = _WANTED_COLUMNS[2:]


def _elements(param: str, columns: Sequence[str]) -> str:
    """The rows of a JSON array of arrays (`param`), each element's values as text under `columns`."""
    values = ", ".join(f"e->>{index} AS {column}" for index, column in enumerate(columns))
    return f"(SELECT {values}, ord FROM json_array_elements(%({param})s::json) WITH ORDINALITY AS t(e, ord))"


# The requests are inserted in the order listed (ORDER BY the ordinality), so their ids follow it: each
# delivery's requests, sorted by id, are its wanted rollouts in order.
BATCH = (
    f"WITH fresh AS ("
    f" INSERT INTO {_DELIVERIES} ({', '.join(_DELIVERY_COLUMNS)}, received_at)"
    f" SELECT {', '.join(f'u.{c}' for c in _DELIVERY_COLUMNS)}, %(now)s"
    f" FROM {_elements('deliveries', _DELIVERY_COLUMNS)} AS u ORDER BY u.ord"
    f" ON CONFLICT (source, delivery_id) DO NOTHING RETURNING id, source, delivery_id"
    f"), requested AS ("
    f" INSERT INTO {_REQUESTS} (delivery_id, {', '.join(_REQUEST_COLUMNS)}, status, created_at, updated_at)"
    f" SELECT fresh.id, {', '.join(f'w.{c}' for c in _REQUEST_COLUMNS)}, %(status)s, %(now)s, %(now)s"
    f" FROM {_elements('wanted', _WANTED_COLUMNS)} AS w"
    f" JOIN fresh ON fresh.source = w.of_source AND fresh.delivery_id = w.of_delivery ORDER BY w.ord"
    f" RETURNING id, delivery_id"
    f") SELECT fresh.source, fresh.delivery_id, requested.id"
    f" FROM fresh LEFT JOIN requested ON requested.delivery_id = fresh.id"
)


class PostgresBatchWriter:
    """Writes batches on one connection of `engine`'s pool, kept between batches; a connection found broken
    is given back to the pool as invalid, and the batch written once more on a new one."""

    def __init__(self, engine: Engine, jobs: QueueJobs) -> None:
        self.engine, self.jobs = engine, jobs
        self._connection: Connection | None = None  # kept; its psycopg connection is written on directly
        self._enqueuer: queue.Enqueuer | None = None  # pgqueuer's queries on it

    def write(self, fresh: Sequence[Delivery]) -> dict[tuple[str, str], list[int]]:
        """Record `fresh` (distinct delivery ids) in one transaction: each newly recorded delivery's request
        ids, in its wanted order; a delivery recorded before is absent. A kept connection that Postgres
        dropped meanwhile (a restart, an idle reaper) is found broken by the batch, which is written once
        more on a new one."""
        try:
            return self._write_once(fresh)
        except Exception:
            if not self._discard_after_failure():
                raise
        # The kept connection had broken (Postgres restarted, or reaped it): once more, on a new one.
        try:
            return self._write_once(fresh)
        except Exception:
            self._discard_after_failure()
            raise

    def _write_once(self, fresh: Sequence[Delivery]) -> dict[tuple[str, str], list[int]]:
        if self._connection is None or self._enqueuer is None:
            # Through `connect`, so a database that cannot be reached is the store's clear error.
            self._connection = self.engine.connect()
            self._enqueuer = queue.Enqueuer(self._connection.connection.driver_connection)
        recorded = self._insert(self._enqueuer, fresh)
        self._enqueuer.driver_connection.commit()
        return recorded

    def _insert(
        self, enqueuer: queue.Enqueuer, fresh: Sequence[Delivery]
    ) -> dict[tuple[str, str], list[int]]:
        deliveries: list[list[str | None]] = []
        wanted: list[tuple[str | None, ...]] = []
        for d in fresh:
            row = d.row()
            deliveries.append([row[c] for c in _DELIVERY_COLUMNS])
            wanted.extend(
                (d.source, d.delivery_id, w.service, w.environment, row["event"], w.git_commit, w.digest,
                 w.built_repository, d.actor)
                for w in d.decision.wanted
            )  # fmt: skip
        params = {
            "deliveries": json.dumps(deliveries),
            "wanted": json.dumps(wanted),
            "now": utcnow(),
            "status": RequestStatus.QUEUED.value,
        }
        recorded: dict[tuple[str, str], list[int]] = {}
        rows = enqueuer.driver_connection.execute(BATCH, params).fetchall()
        for source, delivery_id, request_id in rows:
            ids = recorded.setdefault((source, delivery_id), [])
            if request_id is not None:
                ids.append(int(request_id))
        for ids in recorded.values():
            ids.sort()
        request_ids = sorted(i for ids in recorded.values() for i in ids)
        if request_ids:
            self.jobs.enqueue_requests_on(enqueuer, request_ids)
        return recorded

    def _discard_after_failure(self) -> bool:
        """Roll the failed transaction back and keep the connection if it still works; whether it broke."""
        connection, self._connection, enqueuer, self._enqueuer = self._connection, None, self._enqueuer, None
        if connection is None:  # no connection could be taken (the database is down): nothing to discard
            return False
        raw = connection.connection.driver_connection
        if raw is not None and _rolled_back(raw) and not (raw.closed or raw.broken):
            self._connection, self._enqueuer = connection, enqueuer  # still good: kept for the next batch
            return False
        connection.invalidate()  # the pool forgets it; the next attempt takes another
        connection.close()
        return True

    def close(self) -> None:
        connection, self._connection, self._enqueuer = self._connection, None, None
        if connection is not None:
            connection.close()  # back to the pool


def _rolled_back(raw: Any) -> bool:
    """Roll a psycopg connection's transaction back; whether it could be (a dropped one cannot)."""
    try:
        raw.rollback()
    except Exception:
        return False
    return True
