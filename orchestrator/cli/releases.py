"""`orchestrator releases SERVICE`: the service's releases, newest first, and where each was verified."""

from __future__ import annotations

import json

import click

from orchestrator.cli.db import database_url_option
from orchestrator.cli.options import format_option, open_project, root_option, server_url

# repository.DEFAULT_HISTORY_LIMIT, repeated so `--help` needs no SQLAlchemy
DEFAULT_LIMIT = 20


@click.command("releases")
@click.argument("service")
@click.option("--limit", type=click.IntRange(min=1), default=DEFAULT_LIMIT, show_default=True)
@format_option
@database_url_option
@root_option
def releases_command(service: str, limit: int, output: str, database_url: str, root: str | None) -> None:
    """Releases of SERVICE (commit, image), newest first, with the environments each Succeeded in."""
    if (server := server_url()) is not None:
        from orchestrator.cli import remote

        remote.refuse_local_options("root", "database_url")
        views = remote.get(server, f"/services/{service}/releases", params={"limit": limit})
    else:
        from orchestrator.runtime import open_store, release_trails

        views = release_trails(open_project(root), open_store(database_url), service, limit)
    if output == "json":
        click.echo(json.dumps(views, indent=2))
        return
    if not views:
        click.echo(f"No releases of {service} yet.")
        return
    rows = [("RELEASE", "COMMIT", "IMAGE", "CREATED (UTC)", "VERIFIED IN")]
    for view in views:
        trail = ", ".join(
            f"{step['environment']} ({step['kind']} {step['deployment'][:8]})" for step in view["trail"]
        )
        created = (view["created_at"] or "")[:19].replace("T", " ")
        rows.append((view["id"][:8], view["git_commit"][:12], view["image"], created, trail or "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
        click.echo("  ".join([*cells, row[-1]]).rstrip())
