"""Where things live: the project checkout and the state folder. Flags win, then ORCHESTRATOR_* variables."""

from __future__ import annotations

import os
from pathlib import Path

ROOT_ENV = "ORCHESTRATOR_ROOT"
STATE_DIR_ENV = "ORCHESTRATOR_STATE_DIR"
DEFAULT_STATE_DIR = ".orchestrator"


def project_root(flag: str | None = None) -> Path:
    """The checkout holding pipelines/, environments/ and templates/ (default: the working folder)."""
    return Path(flag or os.environ.get(ROOT_ENV) or ".").resolve()


def state_dir(flag: str | None = None) -> Path:
    """Local state: the embedded SQLite database, the sim's files (default: ./.orchestrator)."""
    return Path(flag or os.environ.get(STATE_DIR_ENV) or DEFAULT_STATE_DIR).resolve()


# The state database (store/db.py connects to it); here so `--database-url`'s help needs no SQLAlchemy.
DATABASE_URL_ENV = "ORCHESTRATOR_DATABASE_URL"
SQLITE_FILE_NAME = "orchestrator.db"


def default_database_url() -> str:
    """`$ORCHESTRATOR_DATABASE_URL`, else a SQLite file in the state folder."""
    configured = os.environ.get(DATABASE_URL_ENV)
    if configured:
        return configured
    return f"sqlite:///{state_dir() / SQLITE_FILE_NAME}"


# Where people reach this orchestrator (https://orchestrator.example.com): links in notifications and the
# log_url of GitHub deployment statuses point at a deployment's page under it. Unset: no links are sent.
PUBLIC_URL_ENV = "ORCHESTRATOR_PUBLIC_URL"
