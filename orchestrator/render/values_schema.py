"""A pipeline's own JSON Schema for its template values, as Helm's `values.schema.json` is for a chart.

`pipelines/<service>.values.schema.json`, when it exists, is checked against every cluster's merged values
(pipeline, environment, cluster, `--set`) before any template runs. A value that breaks it is reported at
the file and line that set it, the highest-precedence layer that has the path, or as the `--set` that did:
the schema says what is wrong, the layers say where.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.config import ClusterConfig, Environment, Pipeline, Project
from orchestrator.config.source import YamlDocument, format_location
from orchestrator.errors import ConfigError

SUFFIX = ".values.schema.json"


@dataclass(frozen=True)
class ValuesLayer:
    """One source of values, highest precedence first when searched: where a path was set."""

    values: Mapping[str, Any]
    document: Callable[[], YamlDocument] | None  # the file it came from; None for --set
    prefix: tuple[str | int, ...]  # where the values sit in that file, e.g. ("clusters", 0, "values")


class ValuesSchema:
    """The compiled schema of one pipeline's values."""

    def __init__(self, path: Path, shown: str) -> None:
        import jsonschema  # only for pipelines that ship a schema

        self.shown = shown
        try:
            schema = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"not valid JSON: {exc.msg}", file=shown, line=exc.lineno) from None
        except UnicodeDecodeError:
            raise ConfigError("not UTF-8 text", file=shown) from None
        if not isinstance(schema, dict | bool):
            raise ConfigError("a JSON Schema is an object (or true/false)", file=shown)
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        try:
            cls.check_schema(schema)
        except jsonschema.SchemaError as exc:
            where = format_location(list(exc.absolute_path)) or "(the schema)"
            raise ConfigError(f"not a valid JSON Schema: {where}: {exc.message}", file=shown) from None
        self._validator = cls(schema)

    def check(self, values: Mapping[str, Any], layers: Sequence[ValuesLayer]) -> None:
        """Raise a ConfigError for the first value (in path order) that breaks the schema."""
        errors = sorted(self._validator.iter_errors(values), key=lambda e: [str(p) for p in e.absolute_path])
        if not errors:
            return
        error = errors[0]
        path = list(error.absolute_path)
        more = (
            f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
            if len(errors) > 1
            else ""
        )
        message = f"{error.message}{more}; checked against {self.shown}"
        key = "values" + (f".{format_location(path)}" if path and isinstance(path[0], str) else "")
        layer, depth = _setting_layer(layers, path)
        if layer is None:
            raise ConfigError(message, key=key)
        if layer.document is None:
            raise ConfigError(message, key="--set " + format_location(path[:depth]))
        document = layer.document()
        location = (*layer.prefix, *path[:depth])
        raise ConfigError(
            message,
            file=document.display_path,
            line=document.line_of(location),
            key=format_location(location),
        )


def _setting_layer(layers: Sequence[ValuesLayer], path: list[Any]) -> tuple[ValuesLayer | None, int]:
    """The layer that set `path` (the highest holding all of it) and how much of the path it holds; else
    the one holding the longest part of it. An error about the values as a whole (path []) is placed at
    the lowest layer, the pipeline's `values:`, where the defaults live."""
    if not path:
        return (layers[-1], 0) if layers else (None, 0)
    best: tuple[ValuesLayer | None, int] = (None, 0)
    for layer in layers:
        depth = _depth(layer.values, path)
        if depth == len(path):
            return layer, depth
        if depth > best[1]:
            best = (layer, depth)
    return best


def _depth(values: Any, path: list[Any]) -> int:
    node = values
    for depth, part in enumerate(path):
        held = (isinstance(node, Mapping) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        )
        if not held:
            return depth
        node = node[part]
    return len(path)


def load_values_schema(project: Project, service: str) -> ValuesSchema | None:
    """`pipelines/<service>.values.schema.json`, compiled; None when the pipeline ships none."""
    path = project.pipelines_dir / f"{service}{SUFFIX}"
    if not path.is_file():
        return None
    try:
        shown = str(path.relative_to(Path.cwd()))
    except ValueError:  # as Project names its files: from the checkout's parent
        shown = (
            str(path.relative_to(project.root.parent)) if project.root.parent in path.parents else str(path)
        )
    return ValuesSchema(path, shown)


def value_layers(
    project: Project,
    pipeline: Pipeline,
    environment: Environment,
    cluster: ClusterConfig,
    overrides: Mapping[str, Any],
) -> list[ValuesLayer]:
    """Where a cluster's values come from, highest precedence first (see render/values.py)."""
    index = next(i for i, c in enumerate(environment.clusters) if c.name == cluster.name)
    return [
        ValuesLayer(overrides, None, ()),
        ValuesLayer(
            cluster.values,
            lambda: project.environment_document(environment.name),
            ("clusters", index, "values"),
        ),
        ValuesLayer(environment.values, lambda: project.environment_document(environment.name), ("values",)),
        ValuesLayer(pipeline.values, lambda: project.pipeline_document(pipeline.service), ("values",)),
    ]
