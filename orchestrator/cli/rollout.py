"""`deploy`, `status` and the manual controls of a rollout: approve, abort, pause, resume, retry."""

from __future__ import annotations

import json
import sys
import time
import uuid
from datetime import datetime
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from orchestrator.cli.db import database_url_option
from orchestrator.cli.options import format_option, open_project, root_option, set_option
from orchestrator.config import Project
from orchestrator.gitops.commits import head_commit
from orchestrator.render.values import parse_set_overrides
from orchestrator.rollout.engine import DeployRequest, RolloutEngine
from orchestrator.runtime import open_store, rollout_engine
from orchestrator.store import repository as repo
from orchestrator.store.models import Phase, Release
from orchestrator.store.views import deployment_view

EXIT_BY_PHASE = {Phase.SUCCEEDED: 0, Phase.PAUSED: 0, Phase.PROGRESSING: 0}


class ProgressPrinter:
    """Human progress on stdout: one line per step, per-cluster weights, gate measurements."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.console = Console(highlight=False, soft_wrap=True)
        self.started = time.monotonic()

    def __call__(self, event: dict[str, Any]) -> None:
        if not self.enabled:
            return
        elapsed = f"[dim]{time.monotonic() - self.started:6.1f}s[/dim]"
        kind = event["type"]
        if kind == "step":
            self.console.print(f"{elapsed} step {event['step']}: {event['label']}")
        elif kind == "step_completed":
            writes = event.get("writes") or {}
            weights = event.get("weights") or {}
            detail = "  ".join(
                f"{cluster}: {weights[cluster]}% canary"
                if cluster in weights
                else f"{cluster}: {count} write(s)"
                for cluster, count in writes.items()
            )
            self.console.print(f"{elapsed}   [green]done[/green] {detail}")
        elif kind == "waiting":
            remaining = max(0.0, event["until"] - time.time())
            until = datetime.fromtimestamp(event["until"]).strftime("%H:%M:%S")
            self.console.print(f"{elapsed}   next step in {remaining:.1f}s (at {until})")
        elif kind == "measurement":
            self.console.print(f"{elapsed}   [cyan]gate[/cyan] {event['cluster']}: {event['message']}")
        elif kind == "gates":
            self.console.print(f"{elapsed} health gates read {event['source']}")
        elif kind == "paused":
            self.console.print(f"{elapsed} [yellow]paused[/yellow] until approved")
        elif kind == "failed":
            self.console.print(f"{elapsed} [red]failed[/red]: {event['reason']}")
        elif kind == "finished":
            colour = "green" if event["phase"] == Phase.SUCCEEDED.value else "red"
            self.console.print(f"{elapsed} [{colour}]{event['phase']}[/{colour}]")


def _finish(engine: RolloutEngine, deployment_id: uuid.UUID, phase: Phase, output: str) -> None:
    with engine.sessions() as session:
        view = deployment_view(repo.get_deployment(session, deployment_id))
    if output == "json":
        click.echo(json.dumps(view, indent=2))
    else:
        _print_clusters(view)
        if phase is Phase.PAUSED:
            click.echo(f"paused: continue with `orchestrator approve {view['id'][:8]}`")
        if view.get("message") and phase is not Phase.SUCCEEDED:
            click.echo(f"{view['phase']}: {view['message']}")
    sys.exit(EXIT_BY_PHASE.get(phase, 1))


def _print_clusters(view: dict[str, Any]) -> None:
    table = Table(title=f"{view['service']} in {view['environment']}: {view['phase']}", title_justify="left")
    for column in ("cluster", "cloud", "region", "phase", "stable %", "canary %"):
        table.add_column(column)
    for cluster in view.get("clusters") or []:
        table.add_row(
            cluster["cluster"],
            cluster["cloud"],
            cluster["region"],
            cluster["phase"],
            str(cluster["stable_weight"]),
            str(cluster["canary_weight"]),
        )
    Console(highlight=False).print(table)
    click.echo(f"release {view['release']['image']} (commit {view['release']['git_commit'][:12]})")


def built_image(engine: RolloutEngine, service: str, commit: str) -> tuple[str, str] | None:
    """(repository, digest) of the image built for `commit`, if `orchestrator build` recorded one."""
    query = (
        select(Release.image_repository, Release.image_digest)
        .where(Release.service == service, Release.git_commit == commit, Release.image_digest.is_not(None))
        .order_by(Release.created_at.desc())
        .limit(1)
    )
    with engine.sessions() as session:
        row = session.execute(query).first()
    return (row[0], row[1]) if row is not None and row[1] else None


@click.command("deploy")
@click.argument("service")
@click.option("--env", "env_name", required=True, metavar="ENV", help="Environment to roll out to.")
@click.option("--image", default=None, metavar="REF", help="Deploy this image instead of the built one.")
@set_option
@click.option(
    "--strategy",
    type=click.Choice(["rolling"]),
    default=None,
    help="Override the pipeline's strategy with a plain rolling update.",
)
@click.option("--actor", default=None, envvar="ORCHESTRATOR_ACTOR", help="Who deploys (for the audit trail).")
@format_option
@database_url_option
@root_option
def deploy_command(
    service: str,
    env_name: str,
    image: str | None,
    assignments: tuple[str, ...],
    strategy: str | None,
    actor: str | None,
    output: str,
    database_url: str,
    root: str | None,
) -> None:
    """Render SERVICE for ENV, record the release, and roll it out with the service's strategy."""
    project = open_project(root)
    engine = rollout_engine(project, database_url, report=ProgressPrinter(output == "text"))
    commit = head_commit(project.root)
    built = None if image else built_image(engine, service, commit)
    request = DeployRequest(
        service=service,
        environment=env_name,
        git_commit=commit,
        image=image,
        digest=built[1] if built else None,
        built_repository=built[0] if built else None,
        overrides=parse_set_overrides(assignments),
        strategy=strategy,
        actor=actor or _whoami(),
    )
    deployment_id = engine.create(request)
    if output == "text":
        click.echo(f"deployment {str(deployment_id)[:8]}: {service} to {env_name}")
    phase = engine.run(deployment_id)
    _finish(engine, deployment_id, phase, output)


def _whoami() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _control(name: str, help_text: str) -> Any:
    def decorate(func: Any) -> Any:
        func = root_option(func)
        func = database_url_option(func)
        func = format_option(func)
        func = click.argument("deployment")(func)
        return click.command(name, help=help_text)(func)

    return decorate


def _engine(root: str | None, database_url: str, output: str) -> tuple[Project, RolloutEngine]:
    project = open_project(root)
    return project, rollout_engine(project, database_url, report=ProgressPrinter(output == "text"))


def _resolve(engine: RolloutEngine, ref: str) -> uuid.UUID:
    with engine.sessions() as session:
        return repo.get_deployment(session, ref).id


@_control("approve", "Go past the pause DEPLOYMENT waits at and continue the rollout.")
@click.option("--full", is_flag=True, help="Skip every remaining step and promote now.")
def approve_command(deployment: str, full: bool, output: str, database_url: str, root: str | None) -> None:
    _, engine = _engine(root, database_url, output)
    deployment_id = _resolve(engine, deployment)
    engine.approve(deployment_id, full=full, actor=_whoami())
    _finish(engine, deployment_id, engine.run(deployment_id), output)


@_control("resume", "Continue DEPLOYMENT from its last committed step (after a pause or a crash).")
def resume_command(deployment: str, output: str, database_url: str, root: str | None) -> None:
    _, engine = _engine(root, database_url, output)
    deployment_id = _resolve(engine, deployment)
    engine.resume(deployment_id, actor=_whoami())
    _finish(engine, deployment_id, engine.run(deployment_id), output)


@_control("pause", "Pause DEPLOYMENT after its current step.")
def pause_command(deployment: str, output: str, database_url: str, root: str | None) -> None:
    _, engine = _engine(root, database_url, output)
    deployment_id = _resolve(engine, deployment)
    engine.pause(deployment_id, actor=_whoami())
    _finish(engine, deployment_id, Phase.PAUSED, output)


@_control("abort", "Stop DEPLOYMENT and put every cluster back on its stable version.")
def abort_command(deployment: str, output: str, database_url: str, root: str | None) -> None:
    _, engine = _engine(root, database_url, output)
    deployment_id = _resolve(engine, deployment)
    engine.abort(deployment_id, actor=_whoami())
    with engine.sessions() as session:
        view = deployment_view(repo.get_deployment(session, deployment_id))
    click.echo(json.dumps(view, indent=2) if output == "json" else f"aborted; {view['message']}")


@_control("retry", "Roll out the release of a finished DEPLOYMENT again, as a new deployment.")
def retry_command(deployment: str, output: str, database_url: str, root: str | None) -> None:
    _, engine = _engine(root, database_url, output)
    with engine.sessions() as session:
        old = repo.get_deployment(session, deployment)
        if Phase(old.phase) not in (Phase.ROLLED_BACK, Phase.ABORTED, Phase.FAILED):
            raise click.UsageError(
                f"deployment {old.id} is {old.phase}; only a failed or aborted one is retried"
            )
        config = dict(old.config or {})
        request = DeployRequest(
            service=old.service,
            environment=old.environment,
            git_commit=old.release.git_commit,
            image=config.get("image"),
            digest=config.get("digest"),
            built_repository=config.get("built_repository"),
            overrides=config.get("overrides") or {},
            strategy=config.get("strategy"),
            actor=_whoami(),
        )
    deployment_id = engine.create(request)
    _finish(engine, deployment_id, engine.run(deployment_id), output)


@click.command("status")
@click.argument("service", required=False)
@click.option("--env", "env_name", default=None, metavar="ENV", help="Only this environment.")
@format_option
@database_url_option
@root_option
def status_command(
    service: str | None, env_name: str | None, output: str, database_url: str, root: str | None
) -> None:
    """What runs where: the newest deployment of each service in each environment."""
    project = open_project(root)
    services = [project.pipeline(service).service] if service else project.service_names
    environments = [project.environment(env_name).name] if env_name else project.environment_names
    sessions = open_store(database_url)
    views = []
    with sessions() as session:
        for name in services:
            for env in environments:
                latest = repo.latest_deployment(session, name, env)
                if latest is None:
                    continue
                view = deployment_view(latest)
                running = repo.latest_deployment(session, name, env, phases={Phase.SUCCEEDED})
                # What serves traffic: the last release that rolled out everywhere (a failed or rolled-back
                # attempt after it left it in place).
                view["running"] = (
                    None
                    if running is None
                    else {
                        "deployment": str(running.id),
                        "image": running.release.image_ref,
                        "git_commit": running.release.git_commit,
                        "since": running.finished_at.isoformat() if running.finished_at else None,
                    }
                )
                views.append(view)
    if output == "json":
        click.echo(json.dumps(views, indent=2))
        return
    if not views:
        click.echo("nothing deployed yet")
    for view in views:
        _print_clusters(view)
        running = view["running"]
        if running is None:
            click.echo("running: nothing has rolled out successfully yet")
        elif running["deployment"] != view["id"]:
            click.echo(
                f"running: {running['image']} (commit {running['git_commit'][:12]}) "
                f"from deployment {running['deployment'][:8]}, since {running['since']}"
            )
