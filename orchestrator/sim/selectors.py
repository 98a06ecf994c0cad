"""Label and field selectors as the API server parses them (`app=x,tier!=db,env in (a,b),!legacy`)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.sim.errors import ApiError

_SET_RE = re.compile(r"^\s*(!?)\s*([A-Za-z0-9._/-]+)\s*(?:(notin|in)\s*\(([^)]*)\))?\s*$")
_EQ_RE = re.compile(r"^\s*([A-Za-z0-9._/-]+)\s*(==|=|!=)\s*([A-Za-z0-9._-]*)\s*$")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!exists"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "=":
            return present and value == self.values[0]
        if self.op == "!=":
            return not present or value != self.values[0]
        if self.op == "in":
            return present and value in self.values
        if self.op == "notin":
            return not present or value not in self.values
        if self.op == "exists":
            return present
        return not present


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside parentheses (`a in (x,y),b` is two requirements)."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return [p for p in (p.strip() for p in parts) if p]


def parse_label_selector(text: str | None) -> list[Requirement]:
    if not text:
        return []
    reqs: list[Requirement] = []
    for part in _split_top_level(text):
        eq = _EQ_RE.match(part)
        if eq:
            key, op, value = eq.groups()
            reqs.append(Requirement(key, "!=" if op == "!=" else "=", (value,)))
            continue
        st = _SET_RE.match(part)
        if st:
            neg, key, op, values = st.groups()
            if op:
                if neg:
                    raise ApiError(400, f"unable to parse requirement: {part!r}")
                vals = tuple(v.strip() for v in values.split(",") if v.strip())
                reqs.append(Requirement(key, op, vals))
            else:
                reqs.append(Requirement(key, "!exists" if neg else "exists"))
            continue
        raise ApiError(400, f"unable to parse requirement: {part!r}")
    return reqs


def selector_from_label_selector(sel: Mapping[str, Any] | None) -> list[Requirement]:
    """A `LabelSelector` object (matchLabels + matchExpressions) as requirements."""
    if not sel:
        return []
    reqs = [Requirement(k, "=", (str(v),)) for k, v in (sel.get("matchLabels") or {}).items()]
    ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!exists"}
    for expr in sel.get("matchExpressions") or []:
        reqs.append(Requirement(expr["key"], ops[expr["operator"]], tuple(expr.get("values") or ())))
    return reqs


def labels_match(reqs: list[Requirement], labels: Mapping[str, str] | None) -> bool:
    labels = labels or {}
    return all(r.matches(labels) for r in reqs)


_FIELDS: dict[str, Callable[[dict[str, Any]], str]] = {
    "metadata.name": lambda o: str(o.get("metadata", {}).get("name", "")),
    "metadata.namespace": lambda o: str(o.get("metadata", {}).get("namespace", "")),
    "status.phase": lambda o: str(o.get("status", {}).get("phase", "")),
    "spec.nodeName": lambda o: str(o.get("spec", {}).get("nodeName", "")),
    # Events, as `kubectl describe` selects them.
    "involvedObject.kind": lambda o: str(o.get("involvedObject", {}).get("kind", "")),
    "involvedObject.name": lambda o: str(o.get("involvedObject", {}).get("name", "")),
    "involvedObject.namespace": lambda o: str(o.get("involvedObject", {}).get("namespace", "")),
    "involvedObject.uid": lambda o: str(o.get("involvedObject", {}).get("uid", "")),
    "reason": lambda o: str(o.get("reason", "")),
    "type": lambda o: str(o.get("type", "")),
}


def _field_check(
    getter: Callable[[dict[str, Any]], str], value: str, *, negate: bool
) -> Callable[[dict[str, Any]], bool]:
    def check(obj: dict[str, Any]) -> bool:
        return (getter(obj) == value) != negate

    return check


def parse_field_selector(text: str | None) -> Callable[[dict[str, Any]], bool]:
    """Field selectors support `=`, `==` and `!=` on the fields the API server indexes."""
    if not text:
        return lambda _o: True
    checks: list[Callable[[dict[str, Any]], bool]] = []
    for part in _split_top_level(text):
        m = re.match(r"^\s*([A-Za-z.]+)\s*(==|=|!=)\s*(.*?)\s*$", part)
        if not m:
            raise ApiError(400, f"invalid field selector: {part!r}")
        name, op, value = m.groups()
        getter = _FIELDS.get(name)
        if getter is None:
            raise ApiError(400, f'field label not supported: "{name}"')
        checks.append(_field_check(getter, value, negate=op == "!="))
    return lambda o: all(c(o) for c in checks)
