"""Fixtures the whole suite shares."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

# --- databases --------------------------------------------------------------------------------------------
# Tests get real databases: a SQLite file in tmp_path, or a fresh Postgres database made for the test run on
# the server at $ORCHESTRATOR_TEST_PG (default: 127.0.0.1:5432, user postgres, trust auth) and dropped after.
# No Postgres server means the Postgres tests FAIL: they exist to prove the Postgres path works.

TEST_PG_ENV = "ORCHESTRATOR_TEST_PG"
DEFAULT_TEST_PG = "postgresql://postgres@127.0.0.1:5432/postgres"


def _admin_conninfo() -> str:
    """The server URL as libpq reads it (no SQLAlchemy driver suffix), at its maintenance database."""
    url = make_url(os.environ.get(TEST_PG_ENV) or DEFAULT_TEST_PG)
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    """The URL of the test Postgres server; fails the test (never skips) if nothing answers there."""
    conninfo = _admin_conninfo()
    try:
        with psycopg.connect(conninfo, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        pytest.fail(
            f"Postgres is needed at {make_url(conninfo).render_as_string(hide_password=True)} "
            f"(set {TEST_PG_ENV} to use another server): {exc}",
            pytrace=False,
        )
    return conninfo


@pytest.fixture(scope="session")
def make_postgres_database(postgres_server_url: str) -> Iterator[Callable[[], str]]:
    """A factory of fresh, empty, uniquely named Postgres databases; all are dropped when the run ends."""
    created: list[str] = []

    def make() -> str:
        name = f"orchestrator_test_{os.getpid()}_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(postgres_server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        created.append(name)
        url = make_url(postgres_server_url).set(database=name)
        return url.render_as_string(hide_password=False)

    yield make
    with psycopg.connect(postgres_server_url, autocommit=True) as conn:
        for name in created:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def postgres_url(make_postgres_database: Callable[[], str]) -> str:
    """One fresh Postgres database for the whole run (a plain postgresql:// URL, as users write it)."""
    return make_postgres_database()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite database file in a folder that does not exist yet (the store makes it)."""
    return f"sqlite:///{tmp_path / 'state' / 'orchestrator.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def each_backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each kind in turn: the test runs on SQLite, then on a fresh Postgres database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state' / 'orchestrator.db'}"
    make: Callable[[], str] = request.getfixturevalue("make_postgres_database")
    return make()


# --- the emulated clusters as a user runs them --------------------------------------------------------------


@pytest.fixture
def running_sim(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A background sim (`orchestrator sim up`) with its own state folder and database, for the CLI's and
    the browser's tests: the environment their commands run with."""
    from tests.helpers import run_cli

    env = {
        "ORCHESTRATOR_STATE_DIR": str(tmp_path / "state"),
        "ORCHESTRATOR_DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite",
    }
    up = run_cli("sim", "up", env=env)
    assert up.returncode == 0, up.stderr
    try:
        yield env
    finally:
        run_cli("sim", "down", env=env)
