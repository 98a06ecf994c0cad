"""`orchestrator db`: create, migrate and inspect the state database.

Also home of `--database-url`, the option every command that reads or writes state shares. The store is
imported inside the commands: every command's `--help` imports this module, and SQLAlchemy costs more to
load than the whole help should take.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import click

from orchestrator import settings
from orchestrator.cli.auth import authorize_migration, token_option
from orchestrator.cli.options import format_option

F = TypeVar("F", bound=Callable[..., Any])


def _resolve_database_url(ctx: click.Context, param: click.Parameter, value: str | None) -> str:  # noqa: ARG001
    return value or settings.default_database_url()


def database_url_option(func: F) -> F:
    """`--database-url` (env ORCHESTRATOR_DATABASE_URL), resolved to the default SQLite file when absent."""
    return click.option(
        "--database-url",
        "database_url",
        envvar=settings.DATABASE_URL_ENV,
        default=None,
        metavar="URL",
        callback=_resolve_database_url,
        help=(
            "State database: sqlite:///PATH or postgresql://USER@HOST:PORT/DB "
            f"[env {settings.DATABASE_URL_ENV}; default: sqlite:///$ORCHESTRATOR_STATE_DIR/"
            f"{settings.SQLITE_FILE_NAME}, "
            f"state dir {settings.DEFAULT_STATE_DIR}]"
        ),
    )(func)


def _describe(revision: str | None, head: str) -> str:
    from orchestrator.store import db

    if revision is None:
        return "empty (no orchestrator schema)"
    if revision == head:
        return f"{revision} (head)"
    if not db.is_known_revision(revision):
        return f"{revision} (unknown here: made by a newer orchestrator)"
    return f"{revision} (head is {head})"


@click.group("db")
def db_group() -> None:
    """Create and migrate the state database (SQLite or Postgres)."""


@db_group.command("upgrade")
@database_url_option
@click.option("--revision", default="head", show_default=True, help="Migrate up to this revision.")
@token_option
def upgrade_command(database_url: str, revision: str) -> None:
    """Create the orchestrator's tables, or migrate them to the newest schema. Safe to run again.

    Once the database has users, an admin's token is needed; creating the schema needs none."""
    from orchestrator.store import db, queue

    authorize_migration(database_url)
    head = db.head_revision()
    before = db.current_revision(database_url)
    db.upgrade(database_url, revision)
    after = db.current_revision(database_url)
    where = db.display_url(database_url)
    if before == after:
        click.echo(f"{where}: already at {_describe(after, head)}")
    else:
        click.echo(f"{where}: upgraded from {_describe(before, head)} to {_describe(after, head)}")
    if queue.is_postgres(database_url):
        # The workers' job queue (pgqueuer), in its own schema; installed, or converged onto this version's.
        queue.install(database_url)
        click.echo(f"{where}: job queue ready (schema {queue.QUEUE_SCHEMA})")


@db_group.command("downgrade")
@database_url_option
@click.argument("revision")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@token_option
def downgrade_command(database_url: str, revision: str, yes: bool) -> None:
    """Migrate the schema back to REVISION; `base` drops every orchestrator table and the data in them.

    Once the database has users, an admin's token is needed."""
    from orchestrator.store import db

    authorize_migration(database_url)
    where = db.display_url(database_url)
    if not yes:
        click.confirm(f"Migrate {where} back to {revision}? Data in dropped tables is lost", abort=True)
    head = db.head_revision()
    before = db.current_revision(database_url)
    db.downgrade(database_url, revision)
    after = db.current_revision(database_url)
    click.echo(f"{where}: downgraded from {_describe(before, head)} to {_describe(after, head)}")


@db_group.command("current")
@database_url_option
@format_option
def current_command(database_url: str, output: str) -> None:
    """Show the schema revision the database is at, and the one this orchestrator needs."""
    from orchestrator.store import db

    head = db.head_revision()
    current = db.current_revision(database_url)
    where = db.display_url(database_url)
    if output == "json":
        click.echo(
            json.dumps({"database": where, "revision": current, "head": head, "up_to_date": current == head})
        )
        return
    click.echo(f"{where}: {_describe(current, head)}")
