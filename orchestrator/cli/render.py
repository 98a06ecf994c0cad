"""`orchestrator render`: render and schema-validate manifests; nothing is applied."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import click

from orchestrator.cli.options import IMAGE_REFERENCE, open_project, root_option, set_option

if TYPE_CHECKING:  # the renderer (Jinja, the schemas) loads when the command runs, not for --help
    from orchestrator.render.manifests import RenderedSet

FORMATS = ("text", "json", "yaml")


@click.command("render")
@click.argument("service")
@click.option("--env", "env_name", required=True, metavar="ENV", help="Environment to render for.")
@click.option("--cluster", default=None, metavar="C", help="Only this cluster of the environment.")
@set_option
@click.option(
    "--image",
    type=IMAGE_REFERENCE,
    default=None,
    metavar="REF",
    help="Render this image instead of the default.",
)
@click.option(
    "-o",
    "--output",
    default="yaml",
    metavar="DIR|json|yaml",
    help="A folder to write one file per cluster into, or `json` for a summary; default: YAML on stdout.",
)
@click.option("--output-dir", default=None, metavar="DIR", help="Write one file per cluster into DIR.")
@root_option
def render_command(
    service: str,
    env_name: str,
    cluster: str | None,
    assignments: tuple[str, ...],
    image: str | None,
    output: str,
    output_dir: str | None,
    root: str | None,
) -> None:
    """Render SERVICE's manifests for every cluster of ENV and validate them against their schemas."""
    from orchestrator.render.engine import Renderer
    from orchestrator.render.values import parse_set_overrides

    project = open_project(root)
    pipeline = project.pipeline(service)
    environment = project.environment(env_name)
    overrides = parse_set_overrides(assignments)
    sets = Renderer(project).render_environment(
        pipeline, environment, overrides=overrides, image=image, only_cluster=cluster
    )
    folder = output_dir or (output if output not in FORMATS else None)
    if folder:
        written = write_sets(sets, Path(folder))
        for path in written:
            click.echo(f"wrote {path}")
        return
    if output == "json":
        click.echo(json.dumps(render_summary(sets), indent=2))
        return
    for rendered in sets:
        click.echo(
            f"# {rendered.service} in {rendered.environment}/{rendered.cluster} "
            f"({rendered.cloud}), version {rendered.version}, hash {rendered.manifest_hash[:12]}"
        )
        click.echo(rendered.to_yaml(), nl=False)


def render_summary(sets: list[RenderedSet]) -> dict[str, object]:
    from orchestrator.render.manifests import environment_hash

    return {
        "service": sets[0].service if sets else None,
        "environment": sets[0].environment if sets else None,
        "hash": environment_hash(sets),
        "clusters": [s.summary() for s in sets],
    }


def write_sets(sets: list[RenderedSet], folder: Path) -> list[Path]:
    """One file per cluster; every file is written to a temporary name first, then renamed into place."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for rendered in sets:
        target = folder / f"{rendered.cluster}.yaml"
        with tempfile.NamedTemporaryFile("w", dir=folder, delete=False, suffix=".tmp") as handle:
            handle.write(rendered.to_yaml())
        os.replace(handle.name, target)
        written.append(target)
    return written
