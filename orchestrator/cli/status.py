"""`orchestrator status`: what the store recorded beside what each cluster runs now."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from orchestrator.cli.auth import acting, explicit_token, token_option
from orchestrator.cli.db import database_url_option
from orchestrator.cli.options import format_option, open_project, root_option, server_url

if TYPE_CHECKING:
    from orchestrator.config import ClusterConfig
    from orchestrator.kube.client import KubeClient

# runtime.STATUS_TIMEOUT, repeated so `--help` needs no cluster clients: what `status` gives a cluster.
LIVE_TIMEOUT = 5.0


def connect_quickly(cluster: ClusterConfig, timeout: float = LIVE_TIMEOUT) -> KubeClient:
    """`runtime.connect_quickly`, imported when a command connects rather than when this module loads."""
    from orchestrator.runtime import connect_quickly as connect

    return connect(cluster, timeout)


@click.command("status")
@click.argument("service", required=False)
@click.option("--env", "env_name", default=None, metavar="ENV", help="Only this environment.")
@token_option
@format_option
@database_url_option
@root_option
def status_command(
    service: str | None, env_name: str | None, output: str, database_url: str, root: str | None
) -> None:
    """What runs where: the newest deployment of each service in each environment, beside what each of its
    clusters runs now (read live, in parallel); any disagreement is marked."""
    if (server := server_url()) is not None:
        from orchestrator.cli import remote

        remote.refuse_local_options("root", "database_url")
        remote.status(server, service, env_name, output)
        return
    if explicit_token():
        acting(database_url)  # reads are open locally; a token given must still be a valid one
    from orchestrator.cli.rollout import notify_while
    from orchestrator.runtime import open_store, status

    project = open_project(root)
    sessions = open_store(database_url)
    notify_while(project, sessions)  # a new drift found here is announced (on-drift)
    print_status(status(project, sessions, service, env_name), output)


def print_status(views: list[dict[str, Any]], output: str) -> None:
    """What `status` prints for these views (from the store and the clusters, or from the API)."""
    if output == "json":
        click.echo(json.dumps(views, indent=2))
        return
    if not views:
        click.echo("nothing deployed yet")
    for view in views:
        _print(view)


def _print(view: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    from orchestrator.rollout.drift import DriftState
    from orchestrator.rollout.status import summary

    table = Table(title=f"{view['service']} in {view['environment']}: {view['phase']}", title_justify="left")
    for column in ("cluster", "cloud", "region", "phase", "recorded %", "live %", "live", "agrees", "drift"):
        table.add_column(column)
    for cluster in view["clusters"]:
        live = cluster["live"] or {}
        weighed = live.get("stable_weight") is not None
        live_weights = f"{live['stable_weight']}/{live['canary_weight']}" if weighed else "-"
        table.add_row(
            cluster["cluster"],
            cluster["cloud"],
            cluster["region"],
            cluster["phase"] if cluster["touched"] else "not touched",
            f"{cluster['stable_weight']}/{cluster['canary_weight']}",
            live_weights,
            summary(cluster),
            "yes" if not cluster["disagreements"] else "[red]NO[/red]",
            _drift_label(cluster["drift"]),
        )
    Console(highlight=False).print(table)
    click.echo(f"release {view['release']['image']} (commit {view['release']['git_commit'][:12]})")
    running = view["running"]
    if running is None:
        click.echo("running: nothing has rolled out successfully yet")
    elif running["deployment"] != view["id"]:
        click.echo(
            f"running: {running['image']} (commit {running['git_commit'][:12]}) "
            f"from deployment {running['deployment'][:8]}, since {running['since']}"
        )
    if view["phase"] in ("AwaitingApproval", "AwaitingMerge") and view.get("message"):
        click.echo(f"deployment {view['id'][:8]} {view['message']}")
    for problem in view["disagreements"]:
        click.secho(f"DISAGREES {problem}", fg="red")
    drift = view["drift"]
    if drift["state"] == DriftState.DRIFTED.value:
        commit = drift["commit"][:12]
        for cluster in view["clusters"]:
            for line in (cluster["drift"] or {}).get("lines", []):
                click.secho(f"DRIFT {cluster['cluster']}: {line} (commit {commit})", fg="yellow")
        if drift["note"]:
            click.echo(f"note: {drift['note']}")
    if drift["error"]:
        click.secho(f"drift unknown: {drift['error']}", fg="yellow")


def _drift_label(drift: dict[str, Any] | None) -> str:
    """The drift column: in sync / drifted (n fields) / unknown / rolling out / not committed."""
    if drift is None:
        return "-"
    if drift["state"] == "drifted":
        n = drift["fields"]
        return f"[yellow]drifted ({n} field{'s' if n != 1 else ''})[/yellow]"
    return str(drift["state"])
