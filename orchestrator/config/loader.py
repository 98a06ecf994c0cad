"""Load `pipelines/` and `environments/` into typed models; every error names file, line and key."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from orchestrator.config.base import keys_at
from orchestrator.config.environment import Environment
from orchestrator.config.pipeline import Pipeline
from orchestrator.config.source import YamlDocument, format_location, load_yaml
from orchestrator.errors import ConfigError, UnknownNameError

ModelT = TypeVar("ModelT", bound=BaseModel)

# The key each file's name fills in: `pipelines/api.yaml` is service `api`. A file may repeat it, but only
# with the same value.
NAME_KEYS: dict[type[BaseModel], str] = {Pipeline: "service", Environment: "name"}


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
                self._require_folder(self.pipelines_dir)
                raise UnknownNameError("service", service, self.service_names)
            document = self._document(self.pipelines_dir, service)
            pipeline = parse_model(
                Pipeline, document, defaults={NAME_KEYS[Pipeline]: service}, name_key=NAME_KEYS[Pipeline]
            )
            for env in pipeline.promotion_environments:
                if env not in self.environment_names:
                    known = ", ".join(self.environment_names) or "none"
                    raise document.error(
                        f"unknown environment {env!r}; known environments: {known}",
                        pipeline.promotion_location(env),
                    )
            self._pipelines[service] = pipeline
        return self._pipelines[service]

    def pipeline_document(self, service: str) -> YamlDocument:
        """The parsed file behind `pipeline(service)`, to locate problems found after loading."""
        return self._document(self.pipelines_dir, service)

    def environment_document(self, name: str) -> YamlDocument:
        """The parsed file behind `environment(name)`, to locate problems found after loading."""
        return self._document(self.environments_dir, name)

    def environment(self, name: str) -> Environment:
        if name not in self._environments:
            if name not in self.environment_names:
                self._require_folder(self.environments_dir)
                raise UnknownNameError("environment", name, self.environment_names)
            document = self._document(self.environments_dir, name)
            key = NAME_KEYS[Environment]
            self._environments[name] = parse_model(Environment, document, defaults={key: name}, name_key=key)
        return self._environments[name]

    def _require_folder(self, folder: Path) -> None:
        """A root without the folder is the wrong --root, which "unknown service; known: none" hides."""
        if not folder.is_dir():
            where = "does not exist" if not self.root.exists() else f"has no {folder.name}/ folder"
            raise ConfigError(
                f"project root {self.root} {where}; pass --root (or set ORCHESTRATOR_ROOT) to the checkout "
                "holding pipelines/, environments/ and templates/"
            )

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
        raise validation_error(exc, document, data, model) from None


def validation_error(
    exc: ValidationError, document: YamlDocument, data: Any, model: type[BaseModel] | None = None
) -> ConfigError:
    errors = _ordered(exc.errors(include_url=False))
    first = dict(errors[0])
    if first["type"] == "extra_forbidden":
        first["suggested"] = _suggestion(first, errors) or _closest_key(model, first)
    location = _data_location(data, _full_location(first))
    message = _describe(first, location)
    others = [e for e in errors[1:] if not _is_paired(e, first)]
    if others:
        message += f" (and {len(others)} more problem{'s' if len(others) > 1 else ''})"
    return ConfigError(
        message,
        file=document.display_path,
        line=document.line_of(location),
        key=format_location(location) or None,
    )


def _full_location(error: Any) -> tuple[Any, ...]:
    """pydantic's location, extended by the key a model validator named (KeyProblem) or by the tag key of
    a union (`type` of a cluster's target)."""
    ctx = error.get("ctx") or {}
    if error["type"] in ("union_tag_not_found", "union_tag_invalid"):  # the key holding the tag is at fault
        return (*error["loc"], str(ctx.get("discriminator", "")).strip("'"))
    return tuple(error["loc"]) + tuple(getattr(ctx.get("error"), "location", ()))


def _ordered(errors: list[Any]) -> list[Any]:
    """The problem to name first: an unknown key (the one the user typed, often a misspelling that also
    makes a required key missing), then problems in the order pydantic found them."""
    unknown = [e for e in errors if e["type"] == "extra_forbidden"]
    return unknown + [e for e in errors if e["type"] != "extra_forbidden"]


def _suggestion(unknown: Any, errors: Sequence[Any]) -> str | None:
    """The missing sibling key an unknown key most likely misspells ('wieght' for 'weight')."""
    parent, typed = tuple(unknown["loc"][:-1]), str(unknown["loc"][-1])
    missing = [str(e["loc"][-1]) for e in errors if e["type"] == "missing" and tuple(e["loc"][:-1]) == parent]
    close = difflib.get_close_matches(typed, missing, n=1, cutoff=0.6)
    return close[0] if close else None


def _closest_key(model: type[BaseModel] | None, unknown: Any) -> str | None:
    """The key the model allows beside an unknown one that it most likely misspells ('namspace')."""
    if model is None:
        return None
    known = keys_at(model, tuple(unknown["loc"][:-1]))
    close = difflib.get_close_matches(str(unknown["loc"][-1]), known, n=1, cutoff=0.75)
    return close[0] if close else None


def _is_paired(error: Any, first: Any) -> bool:
    """A missing key explained by the unknown key named first (its misspelling) is not another problem."""
    suggested = first.get("suggested")
    return (
        suggested is not None
        and error["type"] == "missing"
        and tuple(error["loc"]) == (*first["loc"][:-1], suggested)
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
        suggested = error.get("suggested")
        typed = location[-1] if location else ""
        hint = f" (did you mean {suggested!r}?)" if suggested else ""
        return f"unknown key {str(typed)!r}{hint}"
    if kind in ("missing", "union_tag_not_found"):
        return "missing required key"
    if kind == "union_tag_invalid":
        ctx = error.get("ctx") or {}
        known = str(ctx.get("expected_tags", "")).replace("'", "")
        return f"unknown {location[-1] if location else 'type'} {ctx.get('tag')!r}; known: {known}"
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            return message[len(prefix) :]
    if "input" in error and not isinstance(error["input"], dict | list):
        message += f", got {error['input']!r}"
    return message
