"""`orchestrator schema`: JSON Schemas of the two configuration formats, for editor completion."""

from __future__ import annotations

import json
from pathlib import Path

import click

KINDS = ("pipeline", "environment")


@click.command("schema")
@click.argument("kind", type=click.Choice([*KINDS, "all"]), default="all")
@click.option("--output-dir", "-d", default=None, metavar="DIR", help="Write <kind>.schema.json files here.")
def schema_command(kind: str, output_dir: str | None) -> None:
    """Print (or write) the JSON Schema of pipelines/*.yaml and environments/*.yaml."""
    from pydantic import BaseModel

    from orchestrator.config import Environment, Pipeline  # the models load to run, not for --help

    models: dict[str, type[BaseModel]] = {"pipeline": Pipeline, "environment": Environment}
    kinds = list(KINDS) if kind == "all" else [kind]
    schemas = {k: models[k].model_json_schema(by_alias=True) for k in kinds}
    for name, schema in schemas.items():
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["title"] = f"AddToCloud orchestrator {name}"
    if output_dir:
        folder = Path(output_dir)
        folder.mkdir(parents=True, exist_ok=True)
        for name, schema in schemas.items():
            path = folder / f"{name}.schema.json"
            path.write_text(json.dumps(schema, indent=2) + "\n")
            click.echo(f"wrote {path}")
        return
    click.echo(json.dumps(schemas if kind == "all" else schemas[kind], indent=2))
