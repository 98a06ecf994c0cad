"""Migrations build exactly the schema the models describe, on SQLite and on a real Postgres, both ways."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect

from orchestrator.errors import OrchestratorError
from orchestrator.store import db
from orchestrator.store.models import Base

REPO = Path(__file__).resolve().parents[2]
TABLES = {
    "users",
    "access_requests",
    "api_tokens",
    "releases",
    "deployments",
    "cluster_deployments",
    "webhook_deliveries",
    "rollout_requests",
    "deployment_events",
    "notification_deliveries",
    "notification_cursor",
    "github_deployments",
}


def _tables(url: str) -> set[str]:
    engine = db.make_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def _reflected_names(engine: Engine) -> dict[str, set[str]]:
    """Every named constraint and index, per kind, as the database reports them."""
    inspector = inspect(engine)
    names: dict[str, set[str]] = {"pk": set(), "fk": set(), "uq": set(), "ck": set(), "ix": set()}
    for table in TABLES:
        names["pk"].add(inspector.get_pk_constraint(table)["name"] or f"<unnamed pk of {table}>")
        names["fk"].update(fk["name"] or "<unnamed fk>" for fk in inspector.get_foreign_keys(table))
        names["uq"].update(uq["name"] or "<unnamed uq>" for uq in inspector.get_unique_constraints(table))
        names["ck"].update(ck["name"] or "<unnamed ck>" for ck in inspector.get_check_constraints(table))
        names["ix"].update(ix["name"] or "<unnamed ix>" for ix in inspector.get_indexes(table))
    return names


def _model_names() -> dict[str, set[str]]:
    names: dict[str, set[str]] = {"pk": set(), "fk": set(), "uq": set(), "ck": set(), "ix": set()}
    for table in Base.metadata.tables.values():
        names["pk"].add(str(table.primary_key.name))
        for constraint in table.constraints:
            kind = type(constraint).__name__
            if kind == "ForeignKeyConstraint":
                names["fk"].add(str(constraint.name))
            elif kind == "UniqueConstraint":
                names["uq"].add(str(constraint.name))
            elif kind == "CheckConstraint":
                names["ck"].add(str(constraint.name))
        names["ix"].update(str(index.name) for index in table.indexes)
    return names


def test_upgrade_creates_every_table(each_backend_url: str) -> None:
    assert db.current_revision(each_backend_url) is None
    db.upgrade(each_backend_url)
    assert _tables(each_backend_url) == TABLES
    assert db.current_revision(each_backend_url) == db.head_revision()


def _alembic_revision(url: str) -> str | None:
    engine = db.make_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def test_the_revision_read_directly_is_alembics_at_every_revision(each_backend_url: str) -> None:
    """`db.current_revision` reads the version table without Alembic (for speed): the same answer as
    Alembic's own, before the first migration, after each, and after a downgrade."""
    assert db.current_revision(each_backend_url) is None is _alembic_revision(each_backend_url)
    for revision in db.known_revisions():
        db.upgrade(each_backend_url, revision)
        assert db.current_revision(each_backend_url) == revision == _alembic_revision(each_backend_url)
    db.downgrade(each_backend_url, "base")
    assert db.current_revision(each_backend_url) is None is _alembic_revision(each_backend_url)


def test_the_head_read_from_the_file_names_is_alembics() -> None:
    """`db.head_revision` lists migrations/versions (for speed): each script is named after its
    revision, the chain is one line, and its head is Alembic's."""
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(db.alembic_config())
    for script in scripts.walk_revisions():
        assert script.path is not None
        assert Path(script.path).name.startswith(f"{script.revision}_"), script.path
    assert scripts.get_heads() == [db.head_revision()]


def test_migrated_schema_matches_the_models(each_backend_url: str) -> None:
    db.upgrade(each_backend_url)
    engine = db.make_engine(each_backend_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
        reflected = _reflected_names(engine)
    finally:
        engine.dispose()
    expected = _model_names()
    if each_backend_url.startswith("sqlite"):
        # SQLite reports a unique index, partial or not, only as an index; and names no primary keys.
        expected["pk"] = set(reflected["pk"])
    else:
        # Postgres lists a unique constraint also under indexes (it is backed by one).
        reflected["ix"] -= reflected["uq"] | reflected["pk"]
    assert reflected == expected


def test_downgrade_to_base_then_upgrade_again(each_backend_url: str) -> None:
    db.upgrade(each_backend_url)
    db.downgrade(each_backend_url, "base")
    assert _tables(each_backend_url) == set()
    assert db.current_revision(each_backend_url) is None
    db.upgrade(each_backend_url)
    assert _tables(each_backend_url) == TABLES
    assert db.current_revision(each_backend_url) == db.head_revision()


def test_upgrade_twice_changes_nothing(each_backend_url: str) -> None:
    db.upgrade(each_backend_url)
    db.upgrade(each_backend_url)
    assert db.current_revision(each_backend_url) == db.head_revision()


def test_check_schema_says_what_to_run(each_backend_url: str) -> None:
    engine = db.make_engine(each_backend_url)
    try:
        with pytest.raises(db.SchemaOutOfDateError, match="run `orchestrator db upgrade`"):
            db.check_schema(engine)
        db.upgrade(each_backend_url)
        db.check_schema(engine)
    finally:
        engine.dispose()


def test_a_plain_postgresql_url_works(make_postgres_database: Callable[[], str]) -> None:
    url = make_postgres_database()
    assert url.startswith("postgresql://")
    db.upgrade(url)
    assert _tables(url) == TABLES
    postgres_style = "postgres://" + url.removeprefix("postgresql://")
    assert db.current_revision(postgres_style) == db.head_revision()


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("postgresql://postgres@127.0.0.1:1/orchestrator", "127.0.0.1:1"),
        ("postgresql://postgres:secret@no-such-host.invalid:5432/orchestrator", "no-such-host.invalid:5432"),
    ],
)
def test_an_unreachable_database_is_a_clear_error_naming_the_host(url: str, named: str) -> None:
    with pytest.raises(OrchestratorError) as caught:
        db.upgrade(url)
    message = str(caught.value)
    assert message.startswith(f"cannot connect to the Postgres server {named}, database 'orchestrator'")
    assert "secret" not in message
    assert "Traceback" not in message


def test_a_database_that_does_not_exist_is_named(postgres_server_url: str) -> None:
    url = postgres_server_url.rsplit("/", 1)[0] + "/no_such_orchestrator_db"
    with pytest.raises(
        db.DatabaseUnavailableError, match=r"database 'no_such_orchestrator_db'.*does not exist"
    ):
        db.current_revision(url)


def test_an_impossible_sqlite_path_is_a_clear_error(tmp_path: Path) -> None:
    in_the_way = tmp_path / "a-file"
    in_the_way.write_text("not a folder")
    with pytest.raises(db.DatabaseUnavailableError, match=f"SQLite database {in_the_way}/sub/state.db"):
        db.upgrade(f"sqlite:///{in_the_way}/sub/state.db")


def test_alembic_command_line_works_with_the_repo_ini(each_backend_url: str) -> None:
    """People can drive the same migrations with plain `alembic -x url=...` from the checkout."""
    alembic = [
        sys.executable,
        "-m",
        "alembic",
        "-c",
        str(REPO / "alembic.ini"),
        "-x",
        f"url={each_backend_url}",
    ]
    upgrade = subprocess.run(
        [*alembic, "upgrade", "head"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert upgrade.returncode == 0, upgrade.stderr
    assert _tables(each_backend_url) == TABLES
    current = subprocess.run([*alembic, "current"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert current.stdout.strip() == f"{db.head_revision()} (head)"
    downgrade = subprocess.run(
        [*alembic, "downgrade", "base"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert downgrade.returncode == 0, downgrade.stderr
    assert _tables(each_backend_url) == set()
