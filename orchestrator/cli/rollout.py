"""`deploy` and the manual controls of a rollout: approve, abort, pause, resume, retry.

A deployment to an environment that requires an approval is recorded AwaitingApproval; `deploy` (and
`retry`) then wait for it, holding the deployment's lease, and drive the rollout once an approver runs
`approve` elsewhere (`--no-wait` returns at once; `approve` then drives it itself, as does `resume` once a
waiting process is gone and its lease expired). `--override-freeze --reason TEXT` is an admin's override of
a freeze window, recorded; both are needed together.

The rollout engine, the store and the cluster clients are imported inside the commands, not here: click
imports this module to show `--help`, which should not pay for SQLAlchemy and the kubernetes client.
"""

from __future__ import annotations

import json
import re
import sys
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from orchestrator.cli.auth import token_option
from orchestrator.cli.db import database_url_option
from orchestrator.cli.options import (
    IMAGE_REFERENCE,
    format_option,
    open_project,
    root_option,
    server_url,
    set_option,
)

if TYPE_CHECKING:
    from orchestrator.config import Project
    from orchestrator.identity.principal import Principal
    from orchestrator.rollout.engine import RolloutEngine
    from orchestrator.store.models import Phase

# Phase values (StrEnum members hash as their value).
EXIT_BY_PHASE = {"Succeeded": 0, "Paused": 0, "Progressing": 0, "AwaitingApproval": 0, "AwaitingMerge": 0}
F = TypeVar("F", bound=Callable[..., Any])


def freeze_options(func: F) -> F:
    """`--override-freeze` and `--reason TEXT`: an admin's override of a freeze window (both or neither)."""
    func = click.option(
        "--reason",
        "freeze_reason",
        default=None,
        metavar="TEXT",
        help="Why the freeze window is overridden (recorded; needed with --override-freeze).",
    )(func)
    return click.option(
        "--override-freeze",
        is_flag=True,
        help="Go ahead inside a freeze window of the environment (admins; needs --reason).",
    )(func)


def wait_option(func: F) -> F:
    return click.option(
        "--no-wait",
        is_flag=True,
        help=(
            "When the environment requires an approval, return once the deployment is recorded "
            "(AwaitingApproval) instead of waiting for it; `approve` then runs it."
        ),
    )(func)


def override_reason(override_freeze: bool, reason: str | None) -> str | None:
    """The override's reason for the engine (None: no override), or bad usage when only one is given."""
    if override_freeze and reason is None:
        raise click.UsageError("--override-freeze needs --reason TEXT (the reason is recorded)")
    if reason is not None and not override_freeze:
        raise click.UsageError("--reason is the reason for --override-freeze; give both or neither")
    return reason


def _finish(engine: RolloutEngine, deployment_id: uuid.UUID, phase: Phase, output: str) -> None:
    from orchestrator.store import repository as repo
    from orchestrator.store.views import deployment_view

    with engine.sessions() as session:
        view = deployment_view(repo.get_deployment(session, deployment_id))
    show_outcome(view, phase.value, output)


def show_outcome(view: dict[str, Any], phase: str, output: str) -> None:
    """Print where the deployment ended up (its view, from the store or the API) and exit with the phase's
    code: the same for a local command and one run through `--server`."""
    if output == "json":
        click.echo(json.dumps(view, indent=2))
    else:
        _print_clusters(view)
        if phase == "Paused":
            click.echo(f"paused: continue with `orchestrator approve {view['id'][:8]}`")
        if view.get("message") and phase != "Succeeded":
            click.echo(f"{view['phase']}: {view['message']}")
        if phase == "AwaitingApproval":
            click.echo(f"nothing is touched until then; `orchestrator abort {view['id'][:8]}` withdraws it")
        if phase == "AwaitingMerge" and view.get("pull_request"):
            click.echo(f"pull request: {view['pull_request']['url']}")
            click.echo(
                "nothing is touched until it is merged; closing it unmerged, or "
                f"`orchestrator abort {view['id'][:8]}`, cancels the deployment"
            )
    sys.exit(EXIT_BY_PHASE.get(phase, 1))


def _print_clusters(view: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

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


def full_sha(_: click.Context, __: click.Parameter, value: str | None) -> str | None:
    """`--commit`: a full commit SHA (a branch or a short SHA would name different commits on different
    machines, and a server's checkout is one of them)."""
    if value is not None and not re.fullmatch(r"[0-9a-f]{40}", value):
        raise click.BadParameter(f"{value!r} is not a full commit SHA (40 lowercase hex digits)")
    return value


@click.command("deploy")
@click.argument("service")
@click.option("--env", "env_name", required=True, metavar="ENV", help="Environment to roll out to.")
@click.option(
    "--image",
    type=IMAGE_REFERENCE,
    default=None,
    metavar="REF",
    help="Deploy this image instead of the built one.",
)
@set_option
@click.option(
    "--strategy",
    type=click.Choice(["rolling"]),
    default=None,
    help="Override the pipeline's strategy with a plain rolling update.",
)
@click.option(
    "--commit",
    default=None,
    metavar="SHA",
    callback=full_sha,
    help="Deploy this commit, its full SHA (as $GITHUB_SHA), rendered from its own tree "
    "[default: HEAD of the checkout].",
)
@click.option("--actor", default=None, envvar="ORCHESTRATOR_ACTOR", help="Who deploys (for the audit trail).")
@wait_option
@freeze_options
@token_option
@format_option
@database_url_option
@root_option
def deploy_command(
    service: str,
    env_name: str,
    image: str | None,
    assignments: tuple[str, ...],
    strategy: str | None,
    commit: str | None,
    actor: str | None,
    no_wait: bool,
    override_freeze: bool,
    freeze_reason: str | None,
    output: str,
    database_url: str,
    root: str | None,
) -> None:
    """Render SERVICE for ENV, record the release, and roll it out with the service's strategy.

    When ENV requires an approval the deployment is recorded AwaitingApproval, nothing touched, and this
    waits until an approver runs `orchestrator approve ID` (or returns at once with --no-wait)."""
    if (server := server_url()) is not None:
        from orchestrator.cli import remote

        remote.refuse_local_options("root", "database_url", "actor")
        body = {
            "service": service,
            "environment": env_name,
            "image": image,
            "set": list(assignments),
            "strategy": strategy,
            "override_freeze": override_reason(override_freeze, freeze_reason),
            "commit": commit,
        }
        remote.deploy(server, body, no_wait=no_wait, output=output)
        return
    from orchestrator.cli.auth import acting
    from orchestrator.cli.progress import progress_reporter
    from orchestrator.gitops.checkouts import project_at
    from orchestrator.identity.rules import Action, require
    from orchestrator.runtime import deploy_request, rollout_engine
    from orchestrator.settings import state_dir

    override = override_reason(override_freeze, freeze_reason)
    checkout = open_project(root)
    project = checkout
    checkout.pipeline(service)  # an unknown service is bad usage, said before anything about who acts
    # Today's rules (the checkout's environment) and, for another commit, that commit's too, as the server
    # checks: an older commit's looser `deployers` list, freeze windows or approval must not let anyone
    # past today's.
    environment = checkout.environment(env_name)  # an unknown one is bad usage too, said before the note
    principal = require(acting(database_url), Action.DEPLOY, environment)
    if commit is not None:  # that commit's own pipelines and templates, as the server renders a push's
        project, commit = project_at(checkout.root, state_dir(), commit)
        project.pipeline(service)
        require(principal, Action.DEPLOY, project.environment(env_name))
    engine = rollout_engine(
        project, database_url, report=progress_reporter(output == "text"), checkout=checkout.root
    )
    _notify(project, engine)
    request = deploy_request(
        project,
        engine.sessions,
        principal,
        service=service,
        environment=env_name,
        image=image,
        assignments=assignments,
        strategy="rolling" if strategy else None,
        actor=actor,
        commit=commit,
        checkout=checkout.root,
    )
    deployment_id = engine.create(
        request, principal=principal, override_freeze=override, today=environment if commit else None
    )
    if output == "text":
        click.echo(f"deployment {str(deployment_id)[:8]}: {service} to {env_name}")
    run_or_wait(engine, deployment_id, no_wait, output)


def run_or_wait(engine: RolloutEngine, deployment_id: uuid.UUID, no_wait: bool, output: str) -> None:
    """Drive a new deployment; one AwaitingApproval is waited for (holding its lease) unless --no-wait."""
    from orchestrator.store.models import Phase

    if engine.phase(deployment_id) is Phase.AWAITING_APPROVAL and no_wait:
        _finish(engine, deployment_id, Phase.AWAITING_APPROVAL, output)
    _finish(engine, deployment_id, engine.run(deployment_id, wait_for_approval=not no_wait), output)


def _control(name: str, help_text: str) -> Any:
    def decorate(func: Any) -> Any:
        func = root_option(func)
        func = database_url_option(func)
        func = format_option(func)
        func = token_option(func)
        func = click.argument("deployment")(func)
        return click.command(name, help=help_text)(func)

    return decorate


def _engine(
    root: str | None, database_url: str, output: str, *, notify: bool = True
) -> tuple[Project, RolloutEngine]:
    from orchestrator.cli.progress import progress_reporter
    from orchestrator.runtime import rollout_engine

    project = open_project(root)
    engine = rollout_engine(project, database_url, report=progress_reporter(output == "text"))
    if notify:
        _notify(project, engine)
    return project, engine


def _notify(project: Project, engine: RolloutEngine) -> None:
    """Announce this command's phase changes: a notifier runs beside the rollout, and when the command
    ends (its context closes, on `sys.exit` too) it delivers what is due for a bounded time."""
    notify_while(project, engine.sessions)


def notify_while(project: Project, sessions: Any) -> None:
    """A notifier for the rest of the command (when something is configured to be told); on close it
    delivers what is due for a bounded time. `drift` and `status` use it for `on-drift`."""
    from orchestrator.runtime import notify_flush_seconds, start_notifier

    flush_seconds = notify_flush_seconds()  # a bad value is bad usage before anything runs
    notifier = start_notifier(project, sessions)
    if notifier is not None:
        click.get_current_context().call_on_close(lambda: notifier.stop(flush_seconds=flush_seconds))


def _authorize(action: str, root: str | None, database_url: str, deployment: str) -> Principal:
    """The acting user, if they may do `action` in the deployment's environment (before anything runs)."""
    from orchestrator.cli.auth import authorize_deployment
    from orchestrator.identity.rules import Action

    return authorize_deployment(Action(action), open_project(root), database_url, deployment)


def _resolve(engine: RolloutEngine, ref: str) -> uuid.UUID:
    from orchestrator.store import repository as repo

    with engine.sessions() as session:
        return repo.get_deployment(session, ref).id


@_control(
    "approve",
    "Start DEPLOYMENT when it awaits its approval, or end the pause it waits at (never an analysis), and "
    "continue the rollout (here, unless the process that waits for it drives it).",
)
@click.option("--full", is_flag=True, help="Skip every remaining step, analyses included, and promote now.")
@freeze_options
def approve_command(
    deployment: str,
    full: bool,
    override_freeze: bool,
    freeze_reason: str | None,
    output: str,
    database_url: str,
    root: str | None,
) -> None:
    override = override_reason(override_freeze, freeze_reason)
    if (server := server_url()) is not None:
        from orchestrator.cli import remote

        remote.refuse_local_options("root", "database_url")
        body = {"full": full, "override_freeze": override}
        remote.control(server, "approve", deployment, body, output)
        return
    principal = _authorize("approve", root, database_url, deployment)
    _, engine = _engine(root, database_url, output)
    deployment_id = _resolve(engine, deployment)
    message = engine.approve(
        deployment_id,
        full=full,
        actor=principal.audit_name(),
        principal=principal,
        override_freeze=override,
    )
    _continue(engine, deployment_id, message, output)


def _continue(engine: RolloutEngine, deployment_id: uuid.UUID, message: str, output: str) -> None:
    """Drive the deployment on from here, unless the engine that already drives it will."""
    from orchestrator.store.models import Phase

    if output == "text":
        click.echo(message)
    holder = engine.driver(deployment_id)
    if holder is not None:
        if output == "text":
            click.echo(f"{holder.owner} drives this deployment and goes on from here")
        _finish(engine, deployment_id, Phase.PROGRESSING, output)
    _finish(engine, deployment_id, engine.run(deployment_id), output)


@_control("resume", "Continue DEPLOYMENT from its last committed step (after a pause or a crash).")
def resume_command(deployment: str, output: str, database_url: str, root: str | None) -> None:
    if (server := server_url()) is not None:
        from orchestrator.cli import remote

        remote.refuse_local_options("root", "database_url")
        remote.control(server, "resume", deployment, None, output)
        return
    principal = _authorize("resume", root, database_url, deployment)
    _, engine = _engine(root, database_url, output)
    deployment_id = _resolve(engine, deployment)
    message = engine.resume(deployment_id, actor=principal.audit_name())
    if output == "text":
        click.echo(message)
    _finish(engine, deployment_id, engine.run(deployment_id), output)


@_control("pause", "Pause DEPLOYMENT after its current step.")
def pause_command(deployment: str, output: str, database_url: str, root: str | None) -> None:
    from orchestrator.store.models import Phase

    if (server := server_url()) is not None:
        from orchestrator.cli import remote

        remote.refuse_local_options("root", "database_url")
        remote.control(server, "pause", deployment, None, output)
        return
    principal = _authorize("pause", root, database_url, deployment)
    _, engine = _engine(root, database_url, output, notify=False)  # a pause announces nothing
    deployment_id = _resolve(engine, deployment)
    message = engine.pause(deployment_id, actor=principal.audit_name())
    if output == "text":
        click.echo(message)
    _finish(engine, deployment_id, Phase.PAUSED, output)


@_control("abort", "Stop DEPLOYMENT and put every touched cluster back on its stable version.")
def abort_command(deployment: str, output: str, database_url: str, root: str | None) -> None:
    if (server := server_url()) is not None:
        from orchestrator.cli import remote

        remote.refuse_local_options("root", "database_url")
        remote.abort(server, deployment, output)
        return
    from orchestrator.store import repository as repo
    from orchestrator.store.views import deployment_view

    principal = _authorize("abort", root, database_url, deployment)
    _, engine = _engine(root, database_url, output)
    deployment_id = _resolve(engine, deployment)
    engine.abort(deployment_id, actor=principal.audit_name())
    with engine.sessions() as session:
        view = deployment_view(repo.get_deployment(session, deployment_id))
    click.echo(json.dumps(view, indent=2) if output == "json" else f"aborted; {view['message']}")


@_control("retry", "Roll out the release of a finished DEPLOYMENT again, as a new deployment.")
@wait_option
@freeze_options
def retry_command(
    deployment: str,
    no_wait: bool,
    override_freeze: bool,
    freeze_reason: str | None,
    output: str,
    database_url: str,
    root: str | None,
) -> None:
    from orchestrator.store import repository as repo

    override = override_reason(override_freeze, freeze_reason)
    if (server := server_url()) is not None:
        from orchestrator.cli import remote

        remote.refuse_local_options("root", "database_url")
        remote.retry(server, deployment, {"override_freeze": override}, no_wait=no_wait, output=output)
        return
    principal = _authorize("retry", root, database_url, deployment)
    _, engine = _engine(root, database_url, output)
    old_id = _resolve(engine, deployment)
    deployment_id = engine.retry(
        old_id,
        actor=principal.audit_name(),
        user_id=principal.user_id,
        principal=principal,
        override_freeze=override,
    )
    if output == "text":
        with engine.sessions() as session:
            new = repo.get_deployment(session, deployment_id)
            click.echo(
                f"deployment {str(deployment_id)[:8]}: {new.service} to {new.environment} "
                f"(retry of {str(old_id)[:8]})"
            )
    run_or_wait(engine, deployment_id, no_wait, output)
