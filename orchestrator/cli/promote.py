"""`promote` and `rollback`: a recorded release rolled out again, unchanged (to the next environment of its
path, or back to where it ran before). The layers they drive are imported inside the commands."""

from __future__ import annotations

import click

from orchestrator.cli.auth import token_option
from orchestrator.cli.db import database_url_option
from orchestrator.cli.options import format_option, open_project, root_option
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
    from orchestrator.cli.rollout import _run_or_wait, override_reason
    from orchestrator.identity.rules import Action
    from orchestrator.rollout import promotion
    from orchestrator.rollout.desired import GitDesiredState
    from orchestrator.runtime import connect_cluster, rollout_engine
    from orchestrator.settings import state_dir

    override = override_reason(override_freeze, freeze_reason)
    project = open_project(root)
    pipeline = project.pipeline(service)
    project.environment(target)
    if source is not None:
        project.environment(source)
    previous = promotion.previous_environment(pipeline, target, source)
    principal = authorize(Action.PROMOTE, target, database_url, project=project)
    engine = rollout_engine(project, database_url, report=progress_reporter(output == "text"))
    with engine.sessions() as session:
        found = promotion.find_source(session, service, previous, release_ref)
        promotion.check_source(
            session,
            service,
            project.environment(previous),
            desired=GitDesiredState(state_dir(), project.root),
            connect=connect_cluster,
        )
    promoted = promotion.prepare(
        project, found, target, actor=principal.audit_name(actor), user_id=principal.user_id
    )
    deployment_id = engine.create(
        promoted.request, principal=principal, override_freeze=override, prepared=promoted.prepared
    )
    if output == "text":
        if promoted.note:
            click.echo(f"note: {promoted.note}")
        click.echo(
            f"deployment {str(deployment_id)[:8]}: promote {service} release {str(found.release)[:8]} "
            f"({found.image}, commit {found.git_commit[:12]}) from {previous} to {target}"
        )
    _run_or_wait(engine, deployment_id, no_wait, output)


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
    from orchestrator.cli.rollout import _run_or_wait, override_reason
    from orchestrator.identity.rules import Action
    from orchestrator.rollout import rollback
    from orchestrator.runtime import rollout_engine

    override = override_reason(override_freeze, freeze_reason)
    project = open_project(root)
    project.pipeline(service)
    project.environment(env_name)
    principal = authorize(Action.ROLLBACK, env_name, database_url, project=project)
    engine = rollout_engine(project, database_url, report=progress_reporter(output == "text"))
    with engine.sessions() as session:
        planned = rollback.prepare(
            session,
            project,
            engine.desired,
            service,
            env_name,
            release_ref=release_ref,
            step_by_step=strategy == "canary",
            actor=principal.audit_name(actor),
            user_id=principal.user_id,
        )
        undoes, restores = planned.undoes, planned.restores
        said = (
            f"{service} in {env_name}: undo deployment {str(undoes.id)[:8]} (release "
            f"{str(undoes.release_id)[:8]}), back to release {str(restores.release_id)[:8]} as deployment "
            f"{str(restores.id)[:8]} committed it ({(restores.gitops_commit or '')[:12]})"
        )
    deployment_id = engine.create(
        planned.request, principal=principal, override_freeze=override, prepared=planned.prepared
    )
    if output == "text":
        click.echo(f"deployment {str(deployment_id)[:8]}: rollback of {said}")
    _run_or_wait(engine, deployment_id, no_wait, output)
