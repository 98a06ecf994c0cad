"""Template values: deep merge with a documented precedence, and `--set key.path=value` overrides.

Precedence, highest first: `--set` > cluster `values` > environment `values` > pipeline `values`.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from orchestrator.errors import ConfigError


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """A new dict: `override` wins; nested mappings merge key by key; lists and scalars replace."""
    merged = {key: _copy(value) for key, value in base.items()}
    _merge_into(merged, override)
    return merged


def merge_values(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """Merge layers given lowest precedence first."""
    # Each value is copied once, into the result, rather than once per layer above it: the render
    # benchmark merges ~1,000 value sets, and repeated deep copies were a third of template rendering.
    result: dict[str, Any] = {}
    for layer in layers:
        _merge_into(result, layer)
    return result


def _merge_into(target: dict[str, Any], override: Mapping[str, Any]) -> None:
    """Merge `override` into `target`, whose values are already copies of ours to change."""
    for key, value in override.items():
        existing = target.get(key)
        if isinstance(value, Mapping) and isinstance(existing, Mapping):
            if not isinstance(existing, dict):
                existing = target[key] = dict(existing.items())
            _merge_into(existing, value)
        else:
            target[key] = _copy(value)


def _copy(value: Any) -> Any:
    """A deep copy; plain dicts and lists (all that configuration holds) without deepcopy's overhead."""
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    if value is None or isinstance(value, str | int | float):
        return value
    return copy.deepcopy(value)


def parse_set_overrides(assignments: Iterable[str]) -> dict[str, Any]:
    """`["sim.errorRate=0.3", "replicas=2"]` -> `{"sim": {"errorRate": 0.3}, "replicas": 2}`.

    The value is read as a YAML 1.2 scalar, as the configuration files are: numbers, booleans and null keep
    their type (`yes` and `10:30` stay strings, as in Helm); quote to force a string (`tag='1.0'`).
    """
    result: dict[str, Any] = {}
    for assignment in assignments:
        key, sep, raw = assignment.partition("=")
        path = key.strip().split(".")
        if not sep:
            raise ConfigError("expected KEY=VALUE", key=f"--set {assignment}")
        if not all(path):
            raise ConfigError("expected KEY=VALUE with KEY like a.b.c", key=f"--set {assignment}")
        try:
            value = YAML(typ="safe").load(raw) if raw.strip() else ""
        except YAMLError:
            value = raw
        node = result
        for part in path[:-1]:
            existing = node.get(part)
            if not isinstance(existing, dict):
                existing = {}
                node[part] = existing
            node = existing
        node[path[-1]] = value
    return result


# --- which values a render reads (to refuse a `--set` that nothing reads) -------------------------------


class ValueReads:
    """The dotted value paths templates read during renders, to tell whether an override does anything.

    `read` holds every path looked up (`replicas`, `resources`, `resources.requests`, ...); `whole` the
    mappings that were iterated or serialised (`env | dictsort`, `x | tojson`), every key under which is
    read, including keys only an override adds. A list or scalar read is read whole.
    """

    def __init__(self) -> None:
        self.read: set[str] = set()
        self.whole: set[str] = set()

    def wrap(self, values: dict[str, Any]) -> TrackedValues:
        return TrackedValues(values, "", self)

    def reads(self, path: str) -> bool:
        """Whether a render read `path` (dotted), a mapping holding it whole, or something under it."""
        if path in self.read:
            return True
        parts = path.split(".")
        if any(".".join(parts[:i]) in self.whole for i in range(len(parts) + 1)):
            return True
        return any(p.startswith(path + ".") for p in self.read)


class TrackedValues(dict[str, Any]):
    """The template `values`, recording each path a template looks up into a `ValueReads`.

    A dict subclass holding the same items, so Jinja (its sandbox included) and json treat it as the mapping
    it is; nested mappings are wrapped as they are looked up. Used only when there are overrides to check:
    the plain dict is cheaper on the benchmark's path.
    """

    __slots__ = ("_children", "_path", "_reads")

    def __init__(self, data: dict[str, Any], path: str, reads: ValueReads) -> None:
        super().__init__(data)
        self._path = path
        self._reads = reads
        self._children: dict[str, TrackedValues] = {}

    def _child_path(self, key: object) -> str:
        return f"{self._path}.{key}" if self._path else str(key)

    def _wrapped(self, key: str, value: Any) -> Any:
        if isinstance(value, dict):
            child = self._children.get(key)
            if child is None:
                child = self._children[key] = TrackedValues(value, self._child_path(key), self._reads)
            return child
        return value

    def __getitem__(self, key: str) -> Any:
        value = super().__getitem__(key)  # a KeyError (a missing value) is not a read of anything
        self._reads.read.add(self._child_path(key))
        return self._wrapped(key, value)

    def get(self, key: str, default: Any = None) -> Any:
        if super().__contains__(key):
            return self[key]
        self._reads.read.add(self._child_path(key))  # asked for: an override that adds it takes effect
        return default

    def __contains__(self, key: object) -> bool:
        self._reads.read.add(self._child_path(key))
        return super().__contains__(key)

    def consume(self) -> dict[str, Any]:
        """The plain mapping, every key under it counted as read (it is being dumped or iterated)."""
        self._reads.whole.add(self._path)
        return dict(super().items())

    def __iter__(self) -> Any:
        self._reads.whole.add(self._path)
        return super().__iter__()

    def keys(self) -> Any:
        self._reads.whole.add(self._path)
        return super().keys()

    def items(self) -> Any:
        self._reads.whole.add(self._path)
        return [(key, self._wrapped(key, value)) for key, value in super().items()]

    def values(self) -> Any:
        return [value for _, value in self.items()]


def leaf_paths(values: Mapping[str, Any], prefix: str = "") -> list[str]:
    """`{"a": {"b": 1}, "c": 2}` -> `["a.b", "c"]`: the paths an override sets."""
    paths: list[str] = []
    for key, value in values.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            paths.extend(leaf_paths(value, path))
        else:
            paths.append(path)
    return paths


def refuse_unread_overrides(
    overrides: Mapping[str, Any], reads: ValueReads, values: Mapping[str, Any], *, service: str, where: str
) -> None:
    """A ConfigError for the first override no template read: it would change the release's version
    (and roll a canary) while changing nothing the clusters run. Names the closest known path."""
    for path in leaf_paths(overrides):
        if reads.reads(path):
            continue
        defined = set(leaf_paths(values))
        if path in defined:  # a real value that these clusters' templates leave alone (sim.* on EKS)
            hint = f" (the values define it, but it has no effect on {where})"
        else:
            close = difflib.get_close_matches(path, sorted(reads.read | defined), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]}?" if close else ""
        raise ConfigError(
            f"no template of {service} reads this value when rendering {where}{hint}", key=f"--set {path}"
        )
