"""`orchestrator diff`: what would change — rendered manifests against the live objects, per cluster."""

from __future__ import annotations

import json

import click

from orchestrator.cli.options import IMAGE_REFERENCE, open_project, root_option, set_option


@click.command("diff")
@click.argument("service")
@click.option("--env", "env_name", required=True, metavar="ENV", help="Environment to compare.")
@click.option("--cluster", default=None, metavar="C", help="Only this cluster.")
@click.option(
    "--image",
    type=IMAGE_REFERENCE,
    default=None,
    metavar="REF",
    help="Compare as if deploying this image.",
)
@set_option
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--exit-code", is_flag=True, help="Exit 1 when anything differs (like `git diff --exit-code`).")
@root_option
def diff_command(
    service: str,
    env_name: str,
    cluster: str | None,
    image: str | None,
    assignments: tuple[str, ...],
    output: str,
    exit_code: bool,
    root: str | None,
) -> None:
    """Show how SERVICE's live objects in each cluster of ENV differ from what would be rendered now."""
    # Loaded to run, not for --help: the kubernetes client and the renderer cost seconds to import.
    from orchestrator.kube.live import object_diff, read_live
    from orchestrator.render.engine import Renderer
    from orchestrator.render.manifests import object_id
    from orchestrator.render.values import parse_set_overrides
    from orchestrator.runtime import connect_cluster

    project = open_project(root)
    pipeline, environment = project.pipeline(service), project.environment(env_name)
    sets = Renderer(project).render_environment(
        pipeline, environment, overrides=parse_set_overrides(assignments), image=image, only_cluster=cluster
    )
    report: dict[str, dict[str, str]] = {}
    for rendered in sets:
        client = connect_cluster(environment.cluster(rendered.cluster))
        changes: dict[str, str] = {}
        for obj in rendered.objects:
            text = object_diff(obj, read_live(client, obj), label=object_id(obj))
            if text:
                changes[object_id(obj)] = text
        report[rendered.cluster] = changes
    if output == "json":
        click.echo(json.dumps({"service": service, "environment": env_name, "clusters": report}, indent=2))
    else:
        for name, changes in report.items():
            click.secho(f"# cluster {name}: {len(changes) or 'no'} object(s) differ", bold=True)
            for text in changes.values():
                click.echo(text, nl=False)
    if exit_code and any(report.values()):
        raise SystemExit(1)
