"""A pipeline's `values.schema.json` (Helm's idea): render checks the merged values and names the file and
line (or the `--set`) that set the value at fault."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.config import Project
from orchestrator.errors import ConfigError
from orchestrator.render.engine import Renderer
from tests.helpers import copy_estate

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["port", "replicas"],
    "properties": {
        "replicas": {"type": "integer", "minimum": 1},
        "port": {"type": "integer"},
        "env": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}


@pytest.fixture
def estate(tmp_path: Path) -> Path:
    root = copy_estate(tmp_path / "estate")
    (root / "pipelines/api.values.schema.json").write_text(json.dumps(SCHEMA, indent=2))
    return root


def render(root: Path, env: str = "local", **kwargs: Any) -> list[Any]:
    project = Project(root)
    return Renderer(project).render_environment(project.pipeline("api"), project.environment(env), **kwargs)


def refusal(root: Path, env: str = "local", **kwargs: Any) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        render(root, env, **kwargs)
    assert caught.value.exit_code == 2
    return caught.value


def test_values_that_keep_the_schema_render(estate: Path) -> None:
    assert [s.cluster for s in render(estate)] == ["aws", "azure", "gcp"]
    assert render(estate, "prod", overrides={"replicas": 4})


def test_a_set_value_is_named_as_the_set(estate: Path) -> None:
    error = refusal(estate, overrides={"replicas": 0})
    assert str(error) == (
        "--set replicas: 0 is less than the minimum of 1; "
        "checked against estate/pipelines/api.values.schema.json"
    )


def test_an_environment_value_is_named_by_file_and_line(estate: Path) -> None:
    env_file = estate / "environments/local.yaml"
    env_file.write_text(env_file.read_text().replace("  replicas: 2\n", "  replicas: 0\n"))
    error = refusal(estate)
    line = env_file.read_text().splitlines().index("  replicas: 0") + 1
    assert (error.file, error.line, error.key) == ("estate/environments/local.yaml", line, "values.replicas")


def test_a_cluster_value_is_named_by_file_and_line(estate: Path) -> None:
    env_file = estate / "environments/local.yaml"
    env_file.write_text(
        env_file.read_text().replace(
            "    target: {type: sim, cluster: gcp}\n",
            "    target: {type: sim, cluster: gcp}\n    values:\n      env: {DEBUG: 1}\n",
        )
    )
    error = refusal(estate)
    line = env_file.read_text().splitlines().index("      env: {DEBUG: 1}") + 1
    assert (error.file, error.line, error.key) == (
        "estate/environments/local.yaml",
        line,
        "clusters[2].values.env.DEBUG",
    )
    assert "1 is not of type 'string'" in str(error)


def test_a_missing_required_value_points_at_the_pipelines_values(estate: Path) -> None:
    pipeline = estate / "pipelines/api.yaml"
    pipeline.write_text(pipeline.read_text().replace("  port: 8080\n", ""))
    error = refusal(estate)
    line = pipeline.read_text().splitlines().index("values:") + 1
    assert (error.file, error.line, error.key) == ("estate/pipelines/api.yaml", line, "values")
    assert "'port' is a required property" in str(error)


def test_a_broken_schema_is_named(estate: Path) -> None:
    schema = estate / "pipelines/api.values.schema.json"
    schema.write_text('{"type": "object",\n "properties": {"replicas": {"type": "count"}}}')
    error = refusal(estate)
    assert error.file == "estate/pipelines/api.values.schema.json"
    assert "not a valid JSON Schema: properties.replicas.type" in str(error)
    schema.write_text('{"type": "object",\n "properties": }')
    error = refusal(estate)
    assert (error.file, error.line) == ("estate/pipelines/api.values.schema.json", 2)
