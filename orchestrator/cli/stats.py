"""`orchestrator stats`: DORA's four keys for a service (or every one), computed from the store."""

from __future__ import annotations

import json

import click

from orchestrator.cli.db import database_url_option
from orchestrator.cli.options import format_option, open_project, root_option, server_url

_NAMES = {
    "deployment_frequency": "deployment frequency",
    "lead_time_for_changes": "lead time for changes",
    "change_failure_rate": "change failure rate",
    "failed_deployment_recovery_time": "failed deployment recovery time",
}


def _shown(figure: dict[str, object]) -> str:
    value = figure["value"]
    if value is None:
        return "no data"
    assert isinstance(value, float | int)
    if figure["unit"] == "ratio":
        return f"{value * 100:.1f} %"
    if figure["unit"] == "per day":
        return f"{value:.2f} per day"
    return f"{value:.1f} h"


@click.command("stats")
@click.argument("service", required=False)
@click.option("--env", "env_name", default=None, metavar="ENV", help="Only this environment.")
@click.option("--since", default="30d", show_default=True, help="The window: 12h, 30d, 2w back from now.")
@format_option
@database_url_option
@root_option
def stats_command(
    service: str | None, env_name: str | None, since: str, output: str, database_url: str, root: str | None
) -> None:
    """DORA's four keys (and their 2024 tiers) for SERVICE, or every service, from the deployment record."""
    from orchestrator.identity.tokens import parse_span
    from orchestrator.store.dora import window_start
    from orchestrator.store.models import utcnow

    if (server := server_url()) is not None:
        from orchestrator.cli import remote

        remote.refuse_local_options("root", "database_url")
        # The window is checked here first, so a bad one names `--since` as the local command does.
        window_start(parse_span(since), utcnow(), text=since, key="--since")
        remote.stats(server, service, env_name, since, output)
        return
    from orchestrator.runtime import open_store
    from orchestrator.runtime import stats as figures

    project = open_project(root)
    view = figures(
        project, open_store(database_url), service=service, environment=env_name, since=since, key="--since"
    )
    print_stats(view, service, env_name, output)


def print_stats(view: dict[str, object], service: str | None, env_name: str | None, output: str) -> None:
    if output == "json":
        click.echo(json.dumps(view, indent=2))
        return
    scope = f"{service or 'every service'} in {env_name or 'every environment'}"
    click.echo(f"DORA figures for {scope}, {view['since']} to {view['until']}:")
    for key, name in _NAMES.items():
        figure = view[key]
        assert isinstance(figure, dict)
        tier = f"  ({figure['tier']})" if figure["tier"] else ""
        click.echo(f"  {name:<32} {_shown(figure):>14}{tier}   from {figure['samples']} deployment(s)")
