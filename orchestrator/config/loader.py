"""Load `pipelines/` and `environments/` into typed models; every error names file, line and key."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from orchestrator.config.environment import Environment
from orchestrator.config.pipeline import Pipeline
from orchestrator.config.source import YamlDocument, format_location, load_yaml
from orchestrator.errors import ConfigError, UnknownNameError

ModelT = TypeVar("ModelT", bound=BaseModel)


class Project:
    """A checkout holding `pipelines/`, `environments/` and `templates/`."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.pipelines_dir = self.root / "pipelines"
        self.environments_dir = self.root / "environments"
        self.templates_dir = self.root / "templates"
        self._pipelines: dict[str, Pipeline] = {}
        self._environments: dict[str, Environment] = {}

    @cached_property
    def service_names(self) -> list[str]:
        return _names_in(self.pipelines_dir)

    @cached_property
    def environment_names(self) -> list[str]:
        return _names_in(self.environments_dir)

    def pipeline(self, service: str) -> Pipeline:
        if service not in self._pipelines:
            if service not in self.service_names:
                raise UnknownNameError("service", service, self.service_names)
            document = self._document(self.pipelines_dir, service)
            pipeline = parse_model(Pipeline, document, defaults={"service": service}, name_key="service")
            for index, env in enumerate(pipeline.promotion):
                if env not in self.environment_names:
                    known = ", ".join(self.environment_names) or "none"
                    raise document.error(
                        f"unknown environment {env!r}; known environments: {known}", ("promotion", index)
                    )
            self._pipelines[service] = pipeline
        return self._pipelines[service]

    def pipeline_document(self, service: str) -> YamlDocument:
        """The parsed file behind `pipeline(service)`, to locate problems found after loading."""
        return self._document(self.pipelines_dir, service)

    def environment(self, name: str) -> Environment:
        if name not in self._environments:
            if name not in self.environment_names:
                raise UnknownNameError("environment", name, self.environment_names)
            document = self._document(self.environments_dir, name)
            self._environments[name] = parse_model(
                Environment, document, defaults={"name": name}, name_key="name"
            )
        return self._environments[name]

    def _document(self, folder: Path, name: str) -> YamlDocument:
        path = folder / f"{name}.yaml"
        try:
            shown = str(path.relative_to(Path.cwd()))
        except ValueError:
            shown = str(path.relative_to(self.root.parent)) if self.root.parent in path.parents else str(path)
        return load_yaml(path, shown)


def _names_in(folder: Path) -> list[str]:
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.yaml"))


def parse_model(
    model: type[ModelT],
    document: YamlDocument,
    *,
    defaults: dict[str, Any] | None = None,
    name_key: str | None = None,
) -> ModelT:
    """Validate a document into `model`; the first problem becomes a ConfigError with file, line and key."""
    data = document.data()
    if not isinstance(data, dict):
        raise document.error(f"expected a mapping at the top level, found {type(data).__name__}")
    for key, value in (defaults or {}).items():
        if key in data and key == name_key and data[key] != value:
            raise document.error(f"{key} {data[key]!r} does not match the file name {value!r}", (key,))
        data.setdefault(key, value)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, document, data) from None


def validation_error(exc: ValidationError, document: YamlDocument, data: Any) -> ConfigError:
    errors = exc.errors(include_url=False)
    first = errors[0]
    location = _data_location(data, first["loc"])
    message = _describe(first, location)
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return ConfigError(
        message,
        file=document.display_path,
        line=document.line_of(location),
        key=format_location(location) or None,
    )


def _data_location(data: Any, loc: Sequence[Any]) -> list[str | int]:
    """Drop the parts pydantic adds that are not in the file (such as union tags)."""
    out: list[str | int] = []
    node = data
    parts = list(loc)
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        if isinstance(node, dict) and isinstance(part, str):
            if part in node:
                out.append(part)
                node = node[part]
            elif last:
                out.append(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            out.append(part)
            node = node[part]
    return out


def _describe(error: Any, location: list[str | int]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "missing required key"
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            return message[len(prefix) :]
    if "input" in error and not isinstance(error["input"], dict | list):
        message += f", got {error['input']!r}"
    return message
