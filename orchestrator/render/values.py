"""Template values: deep merge with a documented precedence, and `--set key.path=value` overrides.

Precedence, highest first: `--set` > cluster `values` > environment `values` > pipeline `values`.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from orchestrator.errors import ConfigError


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """A new dict: `override` wins; nested mappings merge key by key; lists and scalars replace."""
    merged: dict[str, Any] = {k: copy.deepcopy(v) for k, v in base.items()}
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def merge_values(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """Merge layers given lowest precedence first."""
    result: dict[str, Any] = {}
    for layer in layers:
        result = deep_merge(result, layer)
    return result


def parse_set_overrides(assignments: Iterable[str]) -> dict[str, Any]:
    """`["sim.errorRate=0.3", "replicas=2"]` -> `{"sim": {"errorRate": 0.3}, "replicas": 2}`.

    The value is read as a YAML scalar, as Helm's --set does: numbers, booleans and null keep their type;
    quote to force a string (`tag='1.0'`).
    """
    result: dict[str, Any] = {}
    for assignment in assignments:
        key, sep, raw = assignment.partition("=")
        path = key.strip().split(".")
        if not sep or not all(path):
            raise ConfigError(f"--set {assignment!r}: expected KEY=VALUE with KEY like a.b.c", key="--set")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
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
