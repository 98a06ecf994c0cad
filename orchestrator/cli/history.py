"""`orchestrator history SERVICE`: the service's past deployments, newest first."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING

import click

from orchestrator.cli.db import database_url_option
from orchestrator.cli.options import format_option, open_project, root_option
from orchestrator.errors import UnknownNameError

if TYPE_CHECKING:
    from orchestrator.store.models import Deployment

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


def _duration(deployment: Deployment) -> str:
    if deployment.started_at is None:
        return "-"
    if deployment.finished_at is None:
        return "running"
    seconds = int((deployment.finished_at - deployment.started_at).total_seconds())
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _actor(deployment: Deployment) -> str:
    """Who deployed; for a webhook, also which event and delivery (`github (push 72d3…)`)."""
    trigger = (deployment.config or {}).get("trigger")
    actor = deployment.actor or "-"
    if isinstance(trigger, dict) and trigger.get("delivery"):
        return f"{actor} ({trigger.get('event')} {trigger['delivery']})"
    return actor


def _row(deployment: Deployment) -> tuple[str, ...]:
    release = deployment.release
    return (
        str(deployment.id)[:8],
        deployment.environment,
        deployment.phase,
        str(deployment.current_step),
        # A rollback names the deployment it undid: the one whose release left the environment.
        f"rollback of {str(deployment.undoes_id)[:8]}" if deployment.undoes_id else deployment.kind,
        release.git_commit[:12],
        release.image_ref,
        _actor(deployment),
        _when(deployment.created_at),
        _duration(deployment),
        (deployment.message or deployment.reason or "").replace("\n", " "),
    )


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
@format_option
@database_url_option
@root_option
def history_command(
    service: str, environment: str | None, limit: int, output: str, database_url: str, root: str | None
) -> None:
    """Past deployments of SERVICE, newest first: release, phase, who, when, how long, and why."""
    from orchestrator.store import db, repository
    from orchestrator.store.views import deployment_view, event_view

    project = open_project(root)
    engine = db.make_engine(database_url)
    try:
        db.ensure_schema(engine)
        with db.session_factory(engine)() as session:
            deployments = repository.list_deployments(session, service, environment, limit=limit)
            # A service whose pipeline was removed keeps its history; a name never seen is a typo.
            if service not in project.service_names and not repository.list_deployments(
                session, service, None, limit=1
            ):
                raise UnknownNameError("service", service, project.service_names)
            if not deployments and environment and environment not in project.environment_names:
                raise UnknownNameError("environment", environment, project.environment_names)
            if output == "json":
                views = []
                for deployment in deployments:
                    view = deployment_view(deployment)
                    # The audit trail: every step, gate measurement (value, phase, query) and transition.
                    view["events"] = [event_view(e) for e in repository.events_for(session, deployment.id)]
                    views.append(view)
                click.echo(json.dumps(views, indent=2))
                return
            if not deployments:
                where = f" to {environment}" if environment else ""
                click.echo(f"No deployments of {service}{where} yet.")
                return
            click.echo(_table([_COLUMNS, *(_row(d) for d in deployments)]))
    finally:
        engine.dispose()
