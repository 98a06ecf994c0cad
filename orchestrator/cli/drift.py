"""`orchestrator drift`: live objects that no longer hold what was last committed for them, by field."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from orchestrator.cli.db import database_url_option
from orchestrator.cli.options import format_option, open_project, root_option, server_url

if TYPE_CHECKING:
    from orchestrator.rollout.drift import ServiceDrift


@click.command("drift")
@click.argument("service", required=False)
@click.option("--env", "env_name", default=None, metavar="ENV", help="Only this environment.")
@click.option(
    "--exit-code",
    is_flag=True,
    help="Exit 1 when anything drifted or could not be checked (like `git diff --exit-code`).",
)
@format_option
@database_url_option
@root_option
def drift_command(
    service: str | None,
    env_name: str | None,
    exit_code: bool,
    output: str,
    database_url: str,
    root: str | None,
) -> None:
    """List, for SERVICE (default: every service) in ENV (default: every environment), the live objects
    whose fields differ from the environment's GitOps repository, and committed objects missing live.

    Fields other managers own by design are not drift: replicas a committed HPA scales, routes another
    controller added to a VirtualService, server defaults, status and server metadata. While a rollout of
    the service is under way its weights differ by design, and it is reported as rolling out."""
    if (server := server_url()) is not None:
        from orchestrator.cli import remote

        remote.refuse_local_options("root", "database_url")
        remote.drift(server, service, env_name, exit_code, output)
        return
    from orchestrator.cli.rollout import notify_while
    from orchestrator.runtime import drift, open_store

    project, sessions = open_project(root), open_store(database_url)
    notify_while(project, sessions)  # a new drift found here is announced (on-drift)
    show_drift(drift(project, sessions, service, env_name), output, exit_code=exit_code)


def show_drift(reports: list[ServiceDrift], output: str, *, exit_code: bool) -> None:
    """Print the reports (text or JSON); with --exit-code, exit 1 when anything drifted or is unknown."""
    from orchestrator.rollout.drift import DriftState

    if output == "json":
        click.echo(json.dumps([r.to_json() for r in reports], indent=2))
    else:
        _print(reports)
    if exit_code and any(r.state in (DriftState.DRIFTED, DriftState.UNKNOWN) for r in reports):
        raise SystemExit(1)


def _print(reports: list[ServiceDrift]) -> None:
    from orchestrator.rollout.drift import DriftState

    if not reports:
        click.echo("nothing committed yet: no desired state to compare with")
    for report in reports:
        at = f" (commit {report.commit[:12]})" if report.commit else ""
        colour = {DriftState.DRIFTED: "red", DriftState.UNKNOWN: "yellow"}.get(report.state)
        click.secho(
            f"{report.service} in {report.environment}{at}: {report.state.value}", bold=True, fg=colour
        )
        if report.rollout:
            rollout = report.rollout
            click.echo(
                f"  deployment {rollout['deployment'][:8]} is {rollout['phase']}: differences are its steps"
            )
            continue
        if report.note and report.drifted:
            click.echo(f"  note: {report.note}")
        for cluster in report.clusters:
            click.echo(
                f"  {cluster.cluster}: {cluster.label()}" + (f": {cluster.error}" if cluster.error else "")
            )
            for line in cluster.lines():
                click.echo(f"    {line}")
