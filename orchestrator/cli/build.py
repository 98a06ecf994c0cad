"""`orchestrator build`: build a service's image once per commit and push it by digest."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from orchestrator.cli.auth import token_option
from orchestrator.cli.db import database_url_option
from orchestrator.cli.options import format_option, open_project, root_option, server_url

if TYPE_CHECKING:  # docker, git and the registries' SDKs load when a build runs, not for --help
    from orchestrator.build import BuildResult
    from orchestrator.config import Project


@click.command("build")
@click.argument("service")
@click.option("--push", is_flag=True, help="Push by digest to the registries the target clusters pull from.")
@click.option(
    "--commit", default=None, metavar="SHA", help="Commit to build [default: HEAD of the checkout]."
)
@click.option(
    "--env",
    "envs",
    multiple=True,
    metavar="ENV",
    help="Push to the registries of ENV's clusters (repeatable) [default: the pipeline's promotion path].",
)
@click.option(
    "--registry",
    "registry_override",
    default=None,
    metavar="HOST[/PATH]",
    help=(
        "Push to this registry instead; credentials from ORCHESTRATOR_REGISTRY_USERNAME and "
        "ORCHESTRATOR_REGISTRY_PASSWORD, else docker login."
    ),
)
@click.option("-q", "--quiet", is_flag=True, help="Do not stream the build and push output.")
@token_option
@format_option
@root_option
@database_url_option
def build_command(
    service: str,
    push: bool,
    commit: str | None,
    envs: tuple[str, ...],
    registry_override: str | None,
    quiet: bool,
    output: str,
    root: str | None,
    database_url: str,
) -> None:
    """Build SERVICE's image for a commit, once: skipped when the image for the commit already exists.

    Tags: the full and short commit SHA, and the semver of a git tag on the commit. Build and push output
    go to stderr; the result (digest and pinned references) to stdout. Pushing needs a deployer's or an
    admin's token once the database has users. With --server, the build and the push run here and the
    releases are recorded on the server (so a deploy through it rolls out this digest).
    """
    from orchestrator.build import build_and_push

    project = open_project(root)
    server = server_url() if push else None
    if server is not None:
        # The build runs here (docker is here); the server records what was pushed, so a deploy through it
        # rolls out this digest. Who may push is the server's answer for the token, asked before building.
        from orchestrator.cli import remote_builds
        from orchestrator.cli.remote import refuse_local_options

        refuse_local_options("database_url")
        _check_names(project, service, envs)
        remote_builds.authorize_push(server)
        actor, record = None, remote_builds.recorder(server)
    else:
        actor = _authorize_push(project, service, envs, database_url) if push else None
        record = None
    result = build_and_push(
        project,
        service,
        commit=commit,
        push=push,
        envs=list(envs) or None,
        registry_override=registry_override,
        on_output=None if quiet else _stream,
        database_url=database_url,
        actor=actor,
        record=record,
    )
    if output == "json":
        click.echo(json.dumps(result_view(result), indent=2))
        return
    _print_text(result)


def _authorize_push(project: Project, service: str, envs: tuple[str, ...], database_url: str) -> str | None:
    """Who pushes (the releases' `created_by`; None: the bootstrap login, recorded as before), if they may.
    An unknown service or environment is bad usage, said before anything about who acts."""
    from orchestrator.cli.auth import authorize
    from orchestrator.identity.rules import Action

    _check_names(project, service, envs)
    principal = authorize(Action.PUSH, None, database_url)
    return None if principal.bootstrap else principal.email


def _check_names(project: Project, service: str, envs: tuple[str, ...]) -> None:
    project.pipeline(service)
    for env in envs:
        project.environment(env)


def _stream(line: str) -> None:
    click.echo(line, err=True)


def result_view(result: BuildResult) -> dict[str, object]:
    return {
        "service": result.service,
        "commit": result.commit,
        "tags": list(result.tags),
        "digest": result.digest,
        "skipped": result.skipped,
        "imageId": result.image_id,
        "refs": result.refs,
        "layersPushed": result.layers_pushed,
        "layersReused": result.layers_reused,
        "blobsCopied": result.blobs_copied,
        "releases": list(result.release_ids),
    }


def _print_text(result: BuildResult) -> None:
    short = result.commit[:7]
    if result.skipped:
        click.echo(f"{result.service} {short}: image already built; nothing rebuilt")
    else:
        click.echo(f"{result.service} {short}: built {result.image_id}")
    click.echo(f"tags: {', '.join(result.tags)}")
    if result.digest:
        click.echo(f"digest: {result.digest}")
        for ref in result.refs.values():
            click.echo(f"pushed: {ref}")
        if not result.skipped or result.blobs_copied:
            click.echo(
                f"layers: {result.layers_pushed} pushed, {result.layers_reused} already there, "
                f"{result.blobs_copied} blobs copied between registries"
            )
    else:
        for name in result.local_names:
            click.echo(f"local: {name}")
