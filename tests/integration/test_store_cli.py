"""`orchestrator db …` and `orchestrator history` as people run them: in-process and as a real process."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import inspect

from orchestrator import settings
from orchestrator.cli.db import db_group
from orchestrator.cli.history import history_command
from orchestrator.errors import ConfigError
from orchestrator.store import db, repository
from orchestrator.store.models import Base, Phase
from orchestrator.store.repository import ClusterPlacement
from orchestrator.store.transitions import Event
from tests.helpers import REPO, run_cli

T0 = datetime(2025, 6, 1, 9, 0, tzinfo=UTC)
TABLES = set(Base.metadata.tables) | {"alembic_version"}  # every model's table, and Alembic's own

FINAL_EVENT = {Phase.SUCCEEDED: Event.COMPLETED, Phase.ROLLED_BACK: Event.ROLLED_BACK}

HEAD = db.head_revision()  # the newest migration: what `db upgrade` goes to


def _tables(url: str) -> set[str]:
    engine = db.make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _record_history(url: str) -> list[str]:
    """Three deployments of `api`: dev succeeded, prod rolled back, dev in progress. Returns their ids."""
    engine = db.make_engine(url)
    ids: list[str] = []
    try:
        with db.session_factory(engine)() as session:
            plan = [
                ("dev", "1111111111111111", Phase.SUCCEEDED),
                ("prod", "2222222222222222", Phase.ROLLED_BACK),
                ("dev", "3333333333333333", Phase.PROGRESSING),
            ]
            for minutes, (environment, commit, final) in enumerate(plan):
                at = T0 + timedelta(minutes=10 * minutes)
                release = repository.get_or_create_release(
                    session,
                    service="api",
                    git_commit=commit,
                    image_repository="registry.local/api",
                    image_digest=f"sha256:{commit * 4}",
                    manifest_hash=f"m{commit}",
                )
                deployment = repository.create_deployment(
                    session,
                    release=release,
                    environment=environment,
                    strategy="canary",
                    clusters=[ClusterPlacement("aws-primary", "aws", "us-west-2")],
                    actor="alice",
                    now=at,
                )
                repository.set_phase(session, deployment, Phase.PROGRESSING, event=Event.START, now=at)
                if final is not Phase.PROGRESSING:
                    message = "error rate 7% > 1% on aws-primary" if final is Phase.ROLLED_BACK else None
                    repository.set_phase(
                        session,
                        deployment,
                        final,
                        event=FINAL_EVENT[final],
                        message=message,
                        now=at + timedelta(seconds=95),
                    )
                session.commit()
                ids.append(str(deployment.id))
    finally:
        engine.dispose()
    return ids


# --- in process (click's runner) --------------------------------------------------------------------------


def test_db_upgrade_creates_every_table(each_backend_url: str) -> None:
    runner = CliRunner()
    result = runner.invoke(db_group, ["upgrade", "--database-url", each_backend_url])
    assert result.exit_code == 0, result.output
    assert f"upgraded from empty (no orchestrator schema) to {HEAD} (head)" in result.output
    assert _tables(each_backend_url) == TABLES
    again = runner.invoke(db_group, ["upgrade", "--database-url", each_backend_url])
    assert f"already at {HEAD} (head)" in again.output


def test_db_downgrade_to_base_and_back(each_backend_url: str) -> None:
    runner = CliRunner()
    assert runner.invoke(db_group, ["upgrade", "--database-url", each_backend_url]).exit_code == 0
    refused = runner.invoke(db_group, ["downgrade", "base", "--database-url", each_backend_url], input="n\n")
    assert refused.exit_code == 1 and _tables(each_backend_url) == TABLES
    down = runner.invoke(db_group, ["downgrade", "base", "--yes", "--database-url", each_backend_url])
    assert down.exit_code == 0, down.output
    assert f"downgraded from {HEAD} (head) to empty" in down.output
    assert _tables(each_backend_url) == {"alembic_version"}
    assert runner.invoke(db_group, ["upgrade", "--database-url", each_backend_url]).exit_code == 0
    assert _tables(each_backend_url) == TABLES


def test_db_current_reports_the_revision(sqlite_url: str) -> None:
    runner = CliRunner()
    before = runner.invoke(db_group, ["current", "-o", "json", "--database-url", sqlite_url])
    assert json.loads(before.output)["revision"] is None
    runner.invoke(db_group, ["upgrade", "--database-url", sqlite_url])
    after = json.loads(
        runner.invoke(db_group, ["current", "-o", "json", "--database-url", sqlite_url]).output
    )
    assert after == {"database": sqlite_url, "revision": HEAD, "head": HEAD, "up_to_date": True}


def test_the_database_url_comes_from_the_environment(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/from-env/state.db"
    result = CliRunner().invoke(db_group, ["upgrade"], env={db.DATABASE_URL_ENV: url})
    assert result.exit_code == 0, result.output
    assert (tmp_path / "from-env" / "state.db").is_file()


def test_history_lists_deployments_newest_first(each_backend_url: str) -> None:
    db.upgrade(each_backend_url)
    first, second, third = _record_history(each_backend_url)
    runner = CliRunner()
    text = runner.invoke(history_command, ["api", "--database-url", each_backend_url])
    assert text.exit_code == 0, text.output
    header, *lines = text.output.splitlines()
    assert header.split()[:4] == ["ID", "ENV", "PHASE", "STEP"]
    assert [line.split()[0] for line in lines] == [third[:8], second[:8], first[:8]]
    assert lines[1].split()[1:3] == ["prod", "RolledBack"]
    assert "1m35s" in lines[1] and lines[1].endswith("error rate 7% > 1% on aws-primary")
    assert "running" in lines[0]
    assert "registry.local/api@sha256:1111" in lines[2]

    as_json = json.loads(
        runner.invoke(
            history_command, ["api", "--env", "dev", "-o", "json", "--database-url", each_backend_url]
        ).output
    )
    assert [d["id"] for d in as_json] == [third, first]
    assert as_json[1]["phase"] == "Succeeded" and as_json[1]["status"] == "succeeded"
    assert as_json[1]["release"]["git_commit"] == "1111111111111111"
    assert as_json[1]["clusters"][0]["cluster"] == "aws-primary"
    assert as_json[1]["finished_at"] == (T0 + timedelta(seconds=95)).isoformat()

    limited = runner.invoke(
        history_command, ["api", "--limit", "1", "-o", "json", "--database-url", each_backend_url]
    )
    assert [d["id"] for d in json.loads(limited.output)] == [third]


def test_empty_history_is_a_friendly_line_or_an_empty_list(sqlite_url: str) -> None:
    db.upgrade(sqlite_url)
    runner = CliRunner()
    text = runner.invoke(history_command, ["api", "--env", "prod", "--database-url", sqlite_url])
    assert (text.exit_code, text.output) == (0, "No deployments of api to prod yet.\n")
    as_json = runner.invoke(history_command, ["api", "-o", "json", "--database-url", sqlite_url])
    assert (as_json.exit_code, json.loads(as_json.output)) == (0, [])


def test_history_creates_the_embedded_database_as_every_command_does(sqlite_url: str) -> None:
    result = CliRunner().invoke(history_command, ["api", "--database-url", sqlite_url])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "No deployments of api yet."  # after a log line, if any
    assert _tables(sqlite_url) == TABLES


def test_history_on_an_unmigrated_postgres_says_what_to_run(
    make_postgres_database: Callable[[], str],
) -> None:
    url = make_postgres_database()
    result = CliRunner().invoke(history_command, ["api", "--database-url", url])
    assert isinstance(result.exception, db.SchemaOutOfDateError)
    assert "run `orchestrator db upgrade`" in str(result.exception)


# --- as a real process ------------------------------------------------------------------------------------


def test_db_upgrade_as_a_process_on_both_backends(each_backend_url: str) -> None:
    done = run_cli("db", "upgrade", env={db.DATABASE_URL_ENV: each_backend_url})
    assert done.returncode == 0, done.stderr
    assert f"upgraded from empty (no orchestrator schema) to {HEAD} (head)" in done.stdout
    assert _tables(each_backend_url) == TABLES


def test_default_database_is_sqlite_in_the_state_folder(tmp_path: Path) -> None:
    # Run from another folder, the way a user does; PYTHONPATH so the checkout's package is the one imported.
    env = {db.DATABASE_URL_ENV: "", settings.STATE_DIR_ENV: "", "PYTHONPATH": str(REPO)}
    done = run_cli("db", "upgrade", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / ".orchestrator" / "orchestrator.db").is_file()
    elsewhere = run_cli(
        "db", "upgrade", cwd=tmp_path, env={**env, settings.STATE_DIR_ENV: str(tmp_path / "state")}
    )
    assert elsewhere.returncode == 0, elsewhere.stderr
    assert (tmp_path / "state" / "orchestrator.db").is_file()


def test_history_as_a_process(postgres_url: str) -> None:
    db.upgrade(postgres_url)
    ids = _record_history(postgres_url)
    done = run_cli("history", "api", "-o", "json", "--database-url", postgres_url)
    assert done.returncode == 0, done.stderr
    listed = [d["id"] for d in json.loads(done.stdout)]
    assert listed[: len(ids)] == list(reversed(ids))  # the session database may hold other tests' rows too
    unknown = run_cli("history", "no-such-service", "--database-url", postgres_url)
    assert (unknown.returncode, unknown.stdout) == (2, "")
    assert unknown.stderr == "error: unknown service 'no-such-service'; known services: api, frontend\n"


@pytest.mark.parametrize(
    ("command", "url", "named"),
    [
        ("history", "postgresql://postgres@127.0.0.1:1/orch", "Postgres server 127.0.0.1:1, database 'orch'"),
        ("db", "postgres://u:hunter2@no-such-host.invalid/orch", "Postgres server no-such-host.invalid:5432"),
    ],
)
def test_an_unreachable_database_is_one_clear_line(command: str, url: str, named: str) -> None:
    args = ["history", "api"] if command == "history" else ["db", "upgrade"]
    done = run_cli(*args, "--database-url", url)
    assert done.returncode == 1
    assert done.stderr.startswith(f"error: cannot connect to the {named}")
    assert "Traceback" not in done.stderr and "hunter2" not in done.stderr
    assert done.stdout == ""


def test_a_bad_database_url_is_a_usage_error() -> None:
    done = run_cli("db", "upgrade", "--database-url", "mysql://root@localhost/orch")
    assert done.returncode == 2
    assert "unsupported database 'mysql'" in done.stderr


def test_an_unknown_revision_is_a_usage_error_listing_the_known_ones(sqlite_url: str) -> None:
    result = CliRunner().invoke(db_group, ["downgrade", "zzz", "--yes", "--database-url", sqlite_url])
    assert isinstance(result.exception, ConfigError)
    assert "Can't locate revision identified by 'zzz' (known revisions: base, 0001, 0002, 0003, 0004" in str(
        result.exception
    )
