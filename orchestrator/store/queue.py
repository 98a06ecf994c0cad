"""The durable job queue on Postgres (pgqueuer): its schema, and enqueueing inside our own transactions.

pgqueuer keeps its tables in their own Postgres schema, `orchestrator_queue`, beside the orchestrator's
tables but outside what Alembic manages: `orchestrator db upgrade` installs it, or converges it onto what
this pgqueuer version declares (`Queries.upgrade` is idempotent, so running it again is safe, unlike a
plain install on a database that has it).

A job is enqueued with pgqueuer's own INSERT, run on the connection of the transaction that records what
the job is for (a webhook delivery and its rollout requests): either both are committed or neither is, so
a request is never recorded without its job, nor a job queued for a request that was rolled back.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from functools import cache
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import make_url

from orchestrator.errors import OrchestratorError
from orchestrator.store.db import normalize_url

QUEUE_SCHEMA = "orchestrator_queue"
# The job kinds (pgqueuer entrypoints) the workers run.
REQUEST_JOB = "rollout-request"  # turn a rollout request into a deployment and drive it
ROLLOUT_JOB = "rollout"  # drive (or resume) a recorded deployment


@cache
def settings() -> Any:
    """pgqueuer's names, in the orchestrator's schema (read once: pydantic-settings costs a millisecond)."""
    from pgqueuer.domain.settings import DBSettings

    return DBSettings(db_schema=QUEUE_SCHEMA)


@cache
def builders() -> dict[str, Any]:
    from pgqueuer.adapters.persistence import qb

    names = settings()
    return {
        "qbe": qb.QueryBuilderEnvironment(names),
        "qbq": qb.QueryQueueBuilder(names),
        "qbs": qb.QuerySchedulerBuilder(names),
    }


def conninfo(url: str) -> str:
    """The database URL as libpq reads it (no SQLAlchemy driver suffix)."""
    return make_url(normalize_url(url)).set(drivername="postgresql").render_as_string(hide_password=False)


def is_postgres(url: str) -> bool:
    return make_url(normalize_url(url)).get_backend_name() == "postgresql"


class QueueNotInstalledError(OrchestratorError):
    pass


async def _with_queries(url: str, action: str) -> bool:
    import psycopg
    from pgqueuer import PsycopgDriver, Queries

    async with await psycopg.AsyncConnection.connect(conninfo(url), autocommit=True) as connection:
        queries = Queries(PsycopgDriver(connection), **builders())
        installed = await queries.schema_is_installed()
        if action == "install":
            if installed:
                await queries.upgrade()
            else:
                await queries.install(create_schema=True)
            return True
        return installed


def install(url: str) -> None:
    """Install the queue's schema, or converge it onto this pgqueuer version's (safe to run again)."""
    asyncio.run(_with_queries(url, "install"))


def require_installed(url: str) -> None:
    if not asyncio.run(_with_queries(url, "check")):
        raise QueueNotInstalledError(
            f"the job queue is not installed in {make_url(normalize_url(url)).render_as_string()}; "
            "run `orchestrator db upgrade`"
        )


class _TransactionDriver:
    """pgqueuer's SyncDriver on the psycopg connection of a SQLAlchemy transaction (not autocommit: the
    job is committed with the rows it is for)."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection

    def fetch(self, query: str, *args: object) -> list[dict[str, object]]:
        from psycopg import RawCursor
        from psycopg.rows import dict_row

        cursor = RawCursor(self._connection, row_factory=dict_row)
        cursor.execute(query, args or None)
        return cursor.fetchall()


def _queries(driver_connection: Any) -> Any:
    """pgqueuer's queries on a psycopg connection, in its open transaction."""
    from pgqueuer.adapters.persistence.queries import SyncQueries

    return SyncQueries(_TransactionDriver(driver_connection), qbq=builders()["qbq"])


def enqueue(
    connection: Connection, entrypoint: str, payload: bytes, *, after: timedelta | None = None
) -> int:
    """Queue one job in the connection's transaction; its id."""
    driver_connection = connection.connection.driver_connection
    return int(_queries(driver_connection).enqueue(entrypoint, payload, execute_after=after)[0])


def enqueue_many(connection: Connection, entrypoint: str, payloads: list[bytes]) -> list[int]:
    """Queue one job per payload in the connection's transaction, in one statement (pgqueuer's batch
    INSERT); their ids."""
    return _enqueue_many(_queries(connection.connection.driver_connection), entrypoint, payloads)


class Enqueuer:
    """pgqueuer's queries on one psycopg connection of our own, made once for the connection's life (the
    webhook writer's: it enqueues a batch of jobs per transaction)."""

    def __init__(self, driver_connection: Any) -> None:
        self.driver_connection = driver_connection
        self._queries = _queries(driver_connection)

    def enqueue_many(self, entrypoint: str, payloads: list[bytes]) -> list[int]:
        """`enqueue_many`, in the connection's open transaction."""
        return _enqueue_many(self._queries, entrypoint, payloads)


def _enqueue_many(queries: Any, entrypoint: str, payloads: list[bytes]) -> list[int]:
    if not payloads:
        return []
    ids = queries.enqueue([entrypoint] * len(payloads), list[bytes | None](payloads), [0] * len(payloads))
    return [int(i) for i in ids]
