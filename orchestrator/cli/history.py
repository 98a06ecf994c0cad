"""`orchestrator history SERVICE`: the service's past deployments, newest first."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import click

from orchestrator.cli.auth import acting, explicit_token, token_option
from orchestrator.cli.db import database_url_option
from orchestrator.cli.options import format_option, open_project, root_option, server_url

# repository.DEFAULT_HISTORY_LIMIT, repeated so `--help` needs no SQLAlchemy (a test keeps them equal)
DEFAULT_LIMIT = 20

_COLUMNS = (
    "ID",
    "ENV",
    "PHASE",
    "STEP",
    "KIND",
    "COMMIT",
    "IMAGE",
    "ACTOR",
    "CREATED (UTC)",
    "DURATION",
    "MESSAGE",
)


def _duration(view: dict[str, Any]) -> str:
    if view["started_at"] is None:
        return "-"
    if view["finished_at"] is None:
        return "running"
    elapsed = datetime.fromisoformat(view["finished_at"]) - datetime.fromisoformat(view["started_at"])
    minutes, seconds = divmod(int(elapsed.total_seconds()), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"


def _when(moment: str) -> str:
    return datetime.fromisoformat(moment).strftime("%Y-%m-%d %H:%M:%S")


def _actor(view: dict[str, Any]) -> str:
    """Who deployed; for a webhook, also which event and delivery (`github (push 72d3…)`)."""
    trigger = view.get("trigger")
    actor = view["actor"] or "-"
    if isinstance(trigger, dict) and trigger.get("delivery"):
        return f"{actor} ({trigger.get('event')} {trigger['delivery']})"
    return actor


def _row(view: dict[str, Any]) -> tuple[str, ...]:
    """A deployment's line from its view (`store.views.deployment_view`), local or from the API."""
    release = view["release"]
    return (
        view["id"][:8],
        view["environment"],
        view["phase"],
        str(view["current_step"]),
        # A rollback names the deployment it undid: the one whose release left the environment.
        f"rollback of {view['undoes'][:8]}" if view["undoes"] else view["kind"],
        release["git_commit"][:12],
        release["image"],
        _actor(view),
        _when(view["created_at"]),
        _duration(view),
        (view["message"] or view["reason"] or "").replace("\n", " "),
    )


def print_history(views: list[dict[str, Any]], service: str, environment: str | None, output: str) -> None:
    """What `history` prints for these views (with their events, for JSON)."""
    if output == "json":
        click.echo(json.dumps(views, indent=2))
        return
    if not views:
        where = f" to {environment}" if environment else ""
        click.echo(f"No deployments of {service}{where} yet.")
        return
    click.echo(_table([_COLUMNS, *(_row(v) for v in views)]))


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    # The last column is free text: not padded, so lines carry no trailing spaces.
    return "\n".join(
        "  ".join(
            [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=False)] + [row[-1]]
        ).rstrip()
        for row in rows
    )


@click.command("history")
@click.argument("service")
@click.option(
    "--env", "environment", default=None, metavar="ENV", help="Only deployments to this environment."
)
@click.option("--limit", type=click.IntRange(min=1), default=DEFAULT_LIMIT, show_default=True)
@token_option
@format_option
@database_url_option
@root_option
def history_command(
    service: str, environment: str | None, limit: int, output: str, database_url: str, root: str | None
) -> None:
    """Past deployments of SERVICE, newest first: release, phase, who, when, how long, and why."""
    if (server := server_url()) is not None:
        from orchestrator.cli import remote

        remote.refuse_local_options("root", "database_url")
        remote.history(server, service, environment, limit, output)
        return
    if explicit_token():
        acting(database_url)  # reads are open locally; a token given must still be a valid one
    from orchestrator.rollout import history
    from orchestrator.store import db
    from orchestrator.store.views import deployment_view

    project = open_project(root)
    engine = db.make_engine(database_url)
    try:
        db.ensure_schema(engine)
        with db.session_factory(engine)() as session:
            deployments = history.deployments(session, project, service, environment, limit)
            # JSON carries each audit trail; the table needs none of it.
            views = [
                history.with_events(session, d) if output == "json" else deployment_view(d, clusters=False)
                for d in deployments
            ]
    finally:
        engine.dispose()
    print_history(views, service, environment, output)
