"""`orchestrator diff`: three columns of truth per cluster and object — what HEAD's templates render now,
what the environment's GitOps repository last committed for the service, and what the cluster runs."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from orchestrator.cli.options import IMAGE_REFERENCE, open_project, root_option, set_option

if TYPE_CHECKING:
    from orchestrator.rollout.drift import ObjectComparison


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
    """Show, per cluster of ENV and object of SERVICE, what HEAD renders against what was last committed
    (what a deploy would commit), and what was committed against what runs live (drift, by field).
    Objects never committed are compared rendered against live."""
    # Loaded to run, not for --help: the kubernetes client and the renderer cost seconds to import.
    from orchestrator.render.engine import Renderer
    from orchestrator.render.values import parse_set_overrides
    from orchestrator.rollout.desired import GitDesiredState
    from orchestrator.rollout.drift import committed_state, compare_cluster
    from orchestrator.runtime import connect_cluster
    from orchestrator.settings import state_dir

    project = open_project(root)
    pipeline, environment = project.pipeline(service), project.environment(env_name)
    sets = Renderer(project).render_environment(
        pipeline, environment, overrides=parse_set_overrides(assignments), image=image, only_cluster=cluster
    )
    committed = committed_state(GitDesiredState(state_dir(), project.root), environment, service)
    clusters: dict[str, dict[str, Any]] = {}
    for rendered in sets:
        problem = committed.problems.get(rendered.cluster)
        if problem:  # a hand-edited file that is not objects: nothing to compare the cluster with
            clusters[rendered.cluster] = {"error": problem, "objects": []}
            continue
        client = connect_cluster(environment.cluster(rendered.cluster))
        compared = compare_cluster(client, rendered.objects, committed.objects.get(rendered.cluster))
        clusters[rendered.cluster] = {"error": None, "objects": [c for c in compared if c.differs]}
    if output == "json":
        report = {
            "service": service,
            "environment": env_name,
            "commit": committed.commit,
            "clusters": {
                name: {"error": found["error"], "objects": {c.object: c.to_json() for c in found["objects"]}}
                for name, found in clusters.items()
            },
        }
        click.echo(json.dumps(report, indent=2))
    else:
        _print(committed.commit, clusters)
    if exit_code and any(c["objects"] or c["error"] for c in clusters.values()):
        raise SystemExit(1)


def _print(commit: str | None, clusters: dict[str, dict[str, Any]]) -> None:
    click.echo(f"rendered (HEAD) ↔ committed ({commit[:12] if commit else 'nothing yet'}) ↔ live")
    for cluster, found in clusters.items():
        if found["error"]:
            click.secho(f"# cluster {cluster}: the committed file cannot be read: {found['error']}", fg="red")
            continue
        objects: list[ObjectComparison] = found["objects"]
        click.secho(f"# cluster {cluster}: {len(objects) or 'no'} object(s) differ", bold=True)
        width = max((len(c.object) for c in objects), default=0)
        for compared in objects:
            versus_commit, versus_live = compared.columns()
            click.echo(
                f"  {compared.object:<{width}}  rendered↔committed: {versus_commit:<18}  "
                f"committed↔live: {versus_live}"
            )
        for compared in objects:
            click.echo(compared.rendered_vs_committed, nl=False)
            if compared.committed_vs_live is not None:
                for line in compared.committed_vs_live.lines():
                    click.echo(f"drift {line}")
            if compared.committed is None:
                click.echo(compared.rendered_vs_live, nl=False)
