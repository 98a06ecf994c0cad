"""`promote` and `rollback`: a recorded release rolled out again, unchanged (to the next environment of its
path, or back to where it ran before). The layers they drive are imported inside the commands."""

from __future__ import annotations

import click

from orchestrator.cli.auth import token_option
from orchestrator.cli.db import database_url_option
from orchestrator.cli.options import format_option, open_project, root_option, server_url
from orchestrator.cli.rollout import freeze_options, wait_option

_ACTOR = click.option(
    "--actor", default=None, envvar="ORCHESTRATOR_ACTOR", help="Who acts (for the audit trail)."
)


@click.command("promote")
@click.argument("service")
@click.option("--to", "target", required=True, metavar="ENV", help="The environment to promote to.")
@click.option(
    "--from",
    "source",
    default=None,
    metavar="ENV",
    help="Where the release Succeeded [default: the environment before ENV on the promotion path].",
)
@click.option(
    "--release",
    "release_ref",
    default=None,
    metavar="ID",
    help="Promote this release (id or prefix; it must have Succeeded there) [default: the last good one].",
)
@_ACTOR
@wait_option
@freeze_options
@token_option
@format_option
@database_url_option
@root_option
def promote_command(
    service: str,
    target: str,
    source: str | None,
    release_ref: str | None,
    actor: str | None,
    no_wait: bool,
    override_freeze: bool,
    freeze_reason: str | None,
    output: str,
    database_url: str,
    root: str | None,
) -> None:
    """Roll out to ENV the release of SERVICE verified in the previous environment, unchanged: the same
    commit and image digest, rendered with ENV's values as the templates were at the release's commit.

    When ENV requires an approval the promotion is recorded AwaitingApproval, nothing touched, and this
    waits until an approver runs `orchestrator approve ID` (or returns at once with --no-wait)."""
    from orchestrator.cli.auth import authorize
    from orchestrator.cli.progress import progress_reporter
    from orchestrator.cli.rollout import notify_while, override_reason, run_or_wait
    from orchestrator.identity.rules import Action
    from orchestrator.runtime import promote, rollout_engine

    override = override_reason(override_freeze, freeze_reason)
    if (server := server_url()) is not None:
        from orchestrator.cli import remote

        remote.refuse_local_options("root", "database_url", "actor")
        body = {"to": target, "from": source, "release": release_ref, "override_freeze": override}
        remote.create(server, f"/services/{service}/promote", body, no_wait=no_wait, output=output)
        return
    project = open_project(root)
    # Names first (bad usage), then who acts: `promote` checks the rule itself, after finding the path.
    project.pipeline(service)
    principal = authorize(Action.PROMOTE, target, database_url, project=project)
    engine = rollout_engine(project, database_url, report=progress_reporter(output == "text"))
    notify_while(project, engine.sessions)  # its phase changes and post-promotion hooks, as deploy's
    deployment_id, lines = promote(
        project,
        engine,
        principal,
        service=service,
        target=target,
        source=source,
        release_ref=release_ref,
        actor=actor,
        override_freeze=override,
    )
    if output == "text":
        for line in lines:
            click.echo(line)
    run_or_wait(engine, deployment_id, no_wait, output)


@click.command("rollback")
@click.argument("service")
@click.option("--env", "env_name", required=True, metavar="ENV", help="The environment to roll back.")
@click.option(
    "--to",
    "release_ref",
    default=None,
    metavar="RELEASE",
    help="Go back to this release (id or prefix; it Succeeded in ENV) [default: the last good one].",
)
@click.option(
    "--strategy",
    type=click.Choice(["canary"]),
    default=None,
    help="Go step by step with the pipeline's strategy [default: a fast rolling update, no analysis].",
)
@_ACTOR
@wait_option
@freeze_options
@token_option
@format_option
@database_url_option
@root_option
def rollback_command(
    service: str,
    env_name: str,
    release_ref: str | None,
    strategy: str | None,
    actor: str | None,
    no_wait: bool,
    override_freeze: bool,
    freeze_reason: str | None,
    output: str,
    database_url: str,
    root: str | None,
) -> None:
    """Put ENV's files for SERVICE back as an earlier good release committed them (a revert commit) and roll
    that out fast, as a deployment of kind rollback naming the one it undoes. A freeze window refuses it
    like a deploy, and an environment that requires an approval waits for one."""
    from orchestrator.cli.auth import authorize
    from orchestrator.cli.progress import progress_reporter
    from orchestrator.cli.rollout import notify_while, override_reason, run_or_wait
    from orchestrator.identity.rules import Action
    from orchestrator.runtime import rollback, rollout_engine

    override = override_reason(override_freeze, freeze_reason)
    if (server := server_url()) is not None:
        from orchestrator.cli import remote

        remote.refuse_local_options("root", "database_url", "actor")
        body = {
            "environment": env_name,
            "to": release_ref,
            "strategy": strategy,
            "override_freeze": override,
        }
        remote.create(server, f"/services/{service}/rollback", body, no_wait=no_wait, output=output)
        return
    project = open_project(root)
    project.pipeline(service)
    project.environment(env_name)
    principal = authorize(Action.ROLLBACK, env_name, database_url, project=project)
    engine = rollout_engine(project, database_url, report=progress_reporter(output == "text"))
    notify_while(project, engine.sessions)
    deployment_id, lines = rollback(
        project,
        engine,
        principal,
        service=service,
        environment=env_name,
        release_ref=release_ref,
        step_by_step=strategy == "canary",
        actor=actor,
        override_freeze=override,
    )
    if output == "text":
        for line in lines:
            click.echo(line)
    run_or_wait(engine, deployment_id, no_wait, output)
