"""Drift: where a live object no longer holds what was committed for it, field by field.

The rule is "every field the commit sets holds the committed value live", with three kinds of exception,
each because another party owns the field by design rather than by accident:

- the server: status, the metadata it writes (uid, resourceVersion, managedFields...), the annotations tools
  and the orchestrator stamp (kubectl's last-applied configuration, `addtocloud.io/applied-hash`), and every
  default it fills in. Defaults are fields the commit does not set, so comparing only the committed fields
  never sees them; fields the live object has beyond the commit (a label `kubectl label` added) are another
  manager's and are not drift either;
- delegated fields: a Deployment's `spec.replicas` when the committed set has a HorizontalPodAutoscaler
  targeting it (the HPA scales it; `delegated_fields`);
- shared lists: a VirtualService's `spec.http` and a DestinationRule's `spec.subsets` are merged by name on
  apply (`kube/apply.py`), so routes and subsets under names the commit does not use belong to other
  controllers; only the committed names are compared. A leftover route of the rollout engine's own
  (`addtocloud-…`) is not another controller's and counts.

Lists whose items all have distinct `name`s (containers, env, ports, routes) are matched by name, so an
inserted item shows as that item rather than as every later index changing; other lists by position.
A committed field holding nothing (null, `{}`, `[]`) matches a live field that is absent: the API server
drops empty values.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from orchestrator.kube.apply import APPLIED_HASH, is_foreign_route
from orchestrator.kube.stored import as_stored

# Metadata the API server writes on every object: never part of desired state.
SERVER_METADATA = frozenset(
    {
        "managedFields",
        "resourceVersion",
        "uid",
        "creationTimestamp",
        "generation",
        "selfLink",
        "deletionTimestamp",
    }
)
# Annotations tools write on the objects they touch, describing the write rather than the object.
TOOL_ANNOTATIONS = frozenset(
    {
        APPLIED_HASH,
        "kubectl.kubernetes.io/last-applied-configuration",
        "deployment.kubernetes.io/revision",
    }
)


class _Absent:
    """A field that does not exist on one side (distinct from a field holding null)."""

    def __repr__(self) -> str:
        return "absent"


ABSENT: Any = _Absent()


@dataclass(frozen=True)
class FieldDrift:
    """One field whose live value is not the committed one (ABSENT on the side that lacks it)."""

    path: str
    committed: Any
    live: Any

    def describe(self) -> str:
        return f"{self.path}: committed {_show(self.committed)}, live {_show(self.live)}"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FieldDrift:
        """The inverse of `to_json` (a side without its key is ABSENT)."""
        return cls(data["path"], data.get("committed", ABSENT), data.get("live", ABSENT))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path}
        if self.committed is not ABSENT:
            out["committed"] = self.committed
        if self.live is not ABSENT:
            out["live"] = self.live
        return out


@dataclass(frozen=True)
class ObjectDrift:
    """A committed object and how the live one differs: missing altogether, or these fields."""

    object: str  # Deployment/api
    missing: bool = False
    fields: list[FieldDrift] = field(default_factory=list)

    @property
    def drifted(self) -> bool:
        return self.missing or bool(self.fields)

    @property
    def count(self) -> int:
        """How many differences: a missing object is one."""
        return 1 if self.missing else len(self.fields)

    def lines(self) -> list[str]:
        if self.missing:
            return [f"{self.object}: committed, missing live"]
        return [f"{self.object} {f.describe()}" for f in self.fields]

    def to_json(self) -> dict[str, Any]:
        return {"object": self.object, "missing": self.missing, "fields": [f.to_json() for f in self.fields]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ObjectDrift:
        return cls(data["object"], data["missing"], [FieldDrift.from_json(f) for f in data["fields"]])


def _show(value: Any, limit: int = 80) -> str:
    if value is ABSENT:
        return "absent"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def object_name(obj: Mapping[str, Any]) -> str:
    return f"{obj.get('kind', '?')}/{(obj.get('metadata') or {}).get('name', '?')}"


def delegated_fields(committed: Iterable[Mapping[str, Any]]) -> dict[str, frozenset[str]]:
    """Fields of committed objects that another controller sets by design, by object name: the replicas of
    every workload a committed HorizontalPodAutoscaler scales."""
    delegated: dict[str, set[str]] = {}
    for obj in committed:
        if obj.get("kind") != "HorizontalPodAutoscaler":
            continue
        target = (obj.get("spec") or {}).get("scaleTargetRef") or {}
        if target.get("kind") and target.get("name"):
            delegated.setdefault(f"{target['kind']}/{target['name']}", set()).add("spec.replicas")
    return {name: frozenset(paths) for name, paths in delegated.items()}


# Lists that apply merges by name with what other managers put there (see kube/apply.py's SHARED_KINDS):
# (kind, path) -> whether a live item the commit does not name is someone else's.
_Foreign = Callable[[dict[str, Any], set[Any]], bool]
SHARED_LISTS: dict[tuple[str, str], _Foreign] = {
    ("VirtualService", "spec.http"): is_foreign_route,
    ("DestinationRule", "spec.subsets"): lambda _item, _ours: True,
}


def desired_fields(committed: Mapping[str, Any]) -> dict[str, Any]:
    """The committed object without what the server or tools own (status, server metadata, stamps)."""
    obj = {k: v for k, v in committed.items() if k != "status"}
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in SERVER_METADATA}
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k not in TOOL_ANNOTATIONS}
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    obj["metadata"] = meta
    return obj


def object_drift(
    committed: Mapping[str, Any],
    live: Mapping[str, Any] | None,
    *,
    delegated: frozenset[str] = frozenset(),
) -> ObjectDrift:
    """How `live` differs from `committed` (None: the object does not exist live)."""
    name = object_name(committed)
    if live is None:
        return ObjectDrift(name, missing=True)
    comparison = _Comparison(str(committed.get("kind", "")), delegated)
    comparison.compare("", desired_fields(as_stored(committed)), dict(live))
    return ObjectDrift(name, fields=comparison.found)


def set_drift(
    committed: Sequence[Mapping[str, Any]], live: Mapping[str, Mapping[str, Any] | None]
) -> list[ObjectDrift]:
    """Every committed object of one cluster against `live` (by `Kind/name`; None or absent: missing)."""
    delegated = delegated_fields(committed)
    return [
        object_drift(obj, live.get(object_name(obj)), delegated=delegated.get(object_name(obj), frozenset()))
        for obj in committed
    ]


_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _child(path: str, key: str) -> str:
    if _PLAIN_KEY.match(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{key}]"


def _empty(value: Any) -> bool:
    return value is None or value == {} or value == []


def _same_value(committed: Any, live: Any) -> bool:
    """Scalars equal as JSON values: 2 and 2.0 are one number, but true is not 1."""
    if isinstance(committed, bool) or isinstance(live, bool):
        return type(committed) is type(live) and committed == live
    return bool(committed == live)


def _names(items: Sequence[Any]) -> list[Any] | None:
    """Each item's name when every item is a mapping with a distinct one; None otherwise."""
    names = [item.get("name") if isinstance(item, dict) else None for item in items]
    if any(n is None for n in names) or len(set(names)) != len(names):
        return None
    return names


class _Comparison:
    def __init__(self, kind: str, delegated: frozenset[str]) -> None:
        self.kind = kind
        self.delegated = delegated
        self.found: list[FieldDrift] = []

    def differ(self, path: str, committed: Any, live: Any) -> None:
        self.found.append(FieldDrift(path, committed, live))

    def compare(self, path: str, committed: Any, live: Any) -> None:
        if path in self.delegated:
            return
        if isinstance(committed, dict):
            if not isinstance(live, dict):
                self.differ(path, committed, live)
                return
            for key in sorted(committed):
                child = _child(path, str(key))
                if key in live:
                    self.compare(child, committed[key], live[key])
                elif not _empty(committed[key]) and child not in self.delegated:
                    self.differ(child, committed[key], ABSENT)
        elif isinstance(committed, list):
            if isinstance(live, list):
                self.compare_list(path, committed, live)
            elif not (_empty(committed) and live is None):
                self.differ(path, committed, live)
        elif not _same_value(committed, live):
            self.differ(path, committed, live)

    def compare_list(self, path: str, committed: list[Any], live: list[Any]) -> None:
        ours, theirs = _names(committed), _names(live)
        if ours is not None and theirs is not None:
            by_name = dict(zip(theirs, live, strict=True))
            for name, item in zip(ours, committed, strict=True):
                child = f"{path}[name={name}]"
                if name in by_name:
                    self.compare(child, item, by_name[name])
                else:
                    self.differ(child, item, ABSENT)
            foreign = SHARED_LISTS.get((self.kind, path))
            named = set(ours)
            for name, item in zip(theirs, live, strict=True):
                if name not in named and not (foreign is not None and foreign(item, named)):
                    self.differ(f"{path}[name={name}]", ABSENT, item)
            return
        for index, item in enumerate(committed):
            child = f"{path}[{index}]"
            if index < len(live):
                self.compare(child, item, live[index])
            else:
                self.differ(child, item, ABSENT)
        for index in range(len(committed), len(live)):
            self.differ(f"{path}[{index}]", ABSENT, live[index])
