"""What the server benchmarks (webhooks.py, fleet.py) both set up: a fresh Postgres database with the
orchestrator's schema and the job queue, dropped afterwards; a process's CPU time. (Their pushes are the
tests' own, `tests/webhook_helpers.py`.)"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@contextmanager
def fresh_database(prefix: str) -> Iterator[str]:
    """A new database on $ORCHESTRATOR_TEST_PG (default the local server), migrated and with the queue
    installed; its URL. Dropped on the way out, whatever happened."""
    import psycopg
    from psycopg import sql
    from sqlalchemy.engine import make_url

    from orchestrator.store import db, queue

    server_url = os.environ.get("ORCHESTRATOR_TEST_PG") or DEFAULT_SERVER
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
        db.upgrade(url)
        queue.install(url)
        yield url
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def count_rows(url: str, table: str) -> int:
    import psycopg

    from orchestrator.store import queue

    with psycopg.connect(queue.conninfo(url)) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()  # a name of ours, not input
    return int(row[0]) if row else 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a running process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
