"""Read live state and compare it with what was rendered."""

from __future__ import annotations

import difflib
from typing import Any

import yaml

from orchestrator.kube.apply import APPLIED_HASH
from orchestrator.kube.client import KubeClient
from orchestrator.kube.resources import object_ref


def read_live(client: KubeClient, obj: dict[str, Any]) -> dict[str, Any] | None:
    kind, namespace, name = object_ref(obj)
    return client.get(kind.object_path(namespace, name))


def project(live: Any, desired: Any) -> Any:
    """The part of `live` that `desired` speaks about: server-added fields are not drift."""
    if isinstance(desired, dict) and isinstance(live, dict):
        return {k: project(live[k], v) for k, v in desired.items() if k in live}
    if isinstance(desired, list) and isinstance(live, list):
        projected = [project(a, b) for a, b in zip(live, desired, strict=False)]
        return projected + live[len(desired) :]
    return live


def _strip(obj: dict[str, Any]) -> dict[str, Any]:
    meta = dict(obj.get("metadata") or {})
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k != APPLIED_HASH}
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    return {**obj, "metadata": meta}


def object_diff(desired: dict[str, Any], live: dict[str, Any] | None, *, label: str) -> str:
    """A unified diff from live to desired (empty when in sync); a missing object shows as all added."""
    return manifest_diff(None if live is None else project(live, desired), desired, "live", "rendered", label)


def manifest_diff(
    before: dict[str, Any] | None, after: dict[str, Any] | None, old: str, new: str, label: str
) -> str:
    """A unified diff of two manifests as YAML with sorted keys, headed `old/label` and `new/label` (empty
    when equal); a side that is None is an object that does not exist there."""
    have = "" if before is None else yaml.safe_dump(_strip(before), sort_keys=True)
    want = "" if after is None else yaml.safe_dump(_strip(after), sort_keys=True)
    lines = difflib.unified_diff(
        have.splitlines(keepends=True), want.splitlines(keepends=True), f"{old}/{label}", f"{new}/{label}"
    )
    return "".join(lines)
