"""Database URLs as people write them, the defaults, and the store's timestamp rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.dialects import sqlite

from orchestrator import settings
from orchestrator.errors import ConfigError
from orchestrator.store import db
from orchestrator.store.models import Phase, UTCDateTime
from orchestrator.store.repository import image_ref_for


@pytest.mark.parametrize(
    ("written", "normalized"),
    [
        ("postgresql://postgres@127.0.0.1:5432/orch", "postgresql+psycopg://postgres@127.0.0.1:5432/orch"),
        ("postgres://postgres@db.example:6543/orch", "postgresql+psycopg://postgres@db.example:6543/orch"),
        ("postgresql://u:p%40ss@h/orch", "postgresql+psycopg://u:p%40ss@h/orch"),
        ("postgresql+psycopg://u@h/orch", "postgresql+psycopg://u@h/orch"),
        ("sqlite:///relative/state.db", "sqlite:///relative/state.db"),
        ("sqlite:////abs/state.db", "sqlite:////abs/state.db"),
        ("sqlite://", "sqlite://"),
    ],
)
def test_normalize_url_fills_in_the_psycopg3_driver(written: str, normalized: str) -> None:
    assert db.normalize_url(written) == normalized


def test_normalize_url_is_pure(tmp_path: Path) -> None:
    db.normalize_url(f"sqlite:///{tmp_path}/not/made/yet.db")
    assert not (tmp_path / "not").exists()


def test_unsupported_database_is_a_config_error_without_the_password() -> None:
    with pytest.raises(ConfigError, match="unsupported database 'mysql'") as caught:
        db.normalize_url("mysql://root:hunter2@localhost/orch")
    assert "hunter2" not in str(caught.value)


def test_garbage_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not a database URL"):
        db.normalize_url("not a url at all")


def test_an_unknown_driver_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="the database driver 'postgresql\\+nosuchdriver' is not installed"):
        db.make_engine("postgresql+nosuchdriver://u@h/orch")


def test_display_url_hides_the_password() -> None:
    assert db.display_url("postgres://u:secret@h/orch") == "postgresql+psycopg://u:***@h/orch"


def test_default_url_is_sqlite_in_the_state_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(db.DATABASE_URL_ENV, raising=False)
    monkeypatch.delenv(settings.STATE_DIR_ENV, raising=False)
    assert db.default_database_url() == f"sqlite:///{Path.cwd() / '.orchestrator'}/orchestrator.db"
    monkeypatch.setenv(settings.STATE_DIR_ENV, str(tmp_path / "state"))
    assert db.default_database_url() == f"sqlite:///{tmp_path}/state/orchestrator.db"
    monkeypatch.setenv(db.DATABASE_URL_ENV, "postgresql://postgres@127.0.0.1/orch")
    assert db.default_database_url() == "postgresql://postgres@127.0.0.1/orch"


def test_sqlite_engine_makes_its_folder_and_turns_on_foreign_keys_and_wal(tmp_path: Path) -> None:
    """WAL with synchronous NORMAL (1): commits outlive a killed process without an fsync each."""
    engine = db.make_engine(f"sqlite:///{tmp_path}/deep/er/state.db")
    try:
        with engine.connect() as connection:
            assert connection.execute(text("PRAGMA foreign_keys")).scalar_one() == 1
            assert connection.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
            assert connection.execute(text("PRAGMA synchronous")).scalar_one() == 1
        assert (tmp_path / "deep" / "er" / "state.db").is_file()
    finally:
        engine.dispose()


def test_timestamps_are_stored_as_utc_and_naive_ones_are_refused() -> None:
    column = UTCDateTime()
    dialect = sqlite.dialect()
    plus_two = datetime(2025, 3, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    assert column.process_bind_param(plus_two, dialect) == datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="naive datetime"):
        column.process_bind_param(datetime(2025, 3, 1, 12, 0), dialect)
    # SQLite hands back naive values; they were stored as UTC, so they come back as UTC.
    assert column.process_result_value(datetime(2025, 3, 1, 10, 0), dialect) == plus_two
    assert column.process_result_value(datetime(2025, 3, 1, 10, 0), dialect).tzinfo is UTC  # type: ignore[union-attr]


def test_seed_status_mirrors_the_phase() -> None:
    assert [p.seed_status for p in Phase] == [
        "pending",
        "awaiting_approval",
        "awaiting_merge",
        "progressing",
        "paused",
        "succeeded",
        "aborted",
        "rolled_back",
        "failed",
    ]


def test_image_reference_prefers_the_digest() -> None:
    assert image_ref_for("reg/app", digest="sha256:ab", tag="v1") == "reg/app@sha256:ab"
    assert image_ref_for("reg/app", tag="v1") == "reg/app:v1"
    assert image_ref_for("reg/app") == "reg/app"
