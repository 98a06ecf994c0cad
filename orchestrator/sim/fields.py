"""Field sets in the `FieldsV1` shape that server-side apply records in `managedFields`.

A field path is a tuple of path elements as they appear in FieldsV1: `f:<field>` for a map key,
`k:{"name":"app"}` for an item of an associative list, `v:<json>` for a set item, and a final `.`
for the list item itself. The schema knowledge (which lists merge by which key, which structs are
atomic) is the part of the Kubernetes OpenAPI that apply and strategic merge patch need.
"""

from __future__ import annotations

import copy
import json
from typing import Any

Path = tuple[str, ...]

# Top-level and metadata fields the server owns; never part of anyone's field set.
_SERVER_METADATA = {
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generateName",
}

_NAME_KEYED = {"containers", "initContainers", "ephemeralContainers", "env", "volumes", "imagePullSecrets"}


def list_strategy(custom: bool, kind: str, names: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    """("map", keys) for an associative list, ("set", ()) for a set, ("atomic", ()) otherwise."""
    if custom or not names:
        return ("atomic", ())
    last = names[-1]
    if last in _NAME_KEYED:
        return ("map", ("name",))
    if last == "volumeMounts":
        return ("map", ("mountPath",))
    if last == "conditions":
        return ("map", ("type",))
    if last == "hostAliases":
        return ("map", ("ip",))
    if last == "ownerReferences":
        return ("map", ("uid",))
    if last == "finalizers":
        return ("set", ())
    if last == "ports":
        if any(n in _NAME_KEYED for n in names[:-1]):
            return ("map", ("containerPort",))
        if kind == "Service":
            return ("map", ("port",))
    return ("atomic", ())


def is_atomic_struct(custom: bool, kind: str, names: tuple[str, ...]) -> bool:
    """Structs replaced as a whole by apply and patches (label selectors of workloads and services)."""
    if custom:
        return False
    return names == ("spec", "selector") and kind in {
        "Deployment",
        "ReplicaSet",
        "Service",
        "PodDisruptionBudget",
    }


def item_key(item: Any, keys: tuple[str, ...]) -> str:
    if not isinstance(item, dict):
        return "v:" + json.dumps(item, separators=(",", ":"))
    key = {k: item[k] for k in sorted(keys) if k in item}
    return "k:" + json.dumps(key, separators=(",", ":"))


class Schema:
    """The apply/patch schema for one kind."""

    def __init__(self, kind: str, custom: bool) -> None:
        self.kind = kind
        self.custom = custom

    def list_strategy(self, names: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
        return list_strategy(self.custom, self.kind, names)

    def atomic_struct(self, names: tuple[str, ...]) -> bool:
        return is_atomic_struct(self.custom, self.kind, names)

    # -- field sets --------------------------------------------------------------------------------
    def field_set(self, obj: dict[str, Any], *, include_status: bool = False) -> set[Path]:
        """Every leaf path of `obj` (plus `.` markers of list items), as apply would own them."""
        out: set[Path] = set()
        for top, value in obj.items():
            if top in ("apiVersion", "kind"):
                continue
            if top == "status" and not include_status:
                continue
            if top == "metadata" and isinstance(value, dict):
                for mk, mv in value.items():
                    if mk in _SERVER_METADATA:
                        continue
                    self._walk(mv, ("f:metadata", f"f:{mk}"), ("metadata", mk), out)
                continue
            self._walk(value, (f"f:{top}",), (top,), out)
        return out

    def _walk(self, value: Any, path: Path, names: tuple[str, ...], out: set[Path]) -> None:
        if isinstance(value, dict) and value and not self.atomic_struct(names):
            for k, v in value.items():
                self._walk(v, (*path, f"f:{k}"), (*names, k), out)
        elif isinstance(value, list) and value:
            strategy, keys = self.list_strategy(names)
            if strategy == "map":
                for item in value:
                    key = item_key(item, keys)
                    out.add((*path, key, "."))
                    if isinstance(item, dict):
                        for k, v in item.items():
                            self._walk(v, (*path, key, f"f:{k}"), (*names, k), out)
            elif strategy == "set":
                for item in value:
                    out.add((*path, item_key(item, ())))
            else:
                out.add(path)
        else:
            out.add(path)

    # -- reading and removing by path -------------------------------------------------------------
    def value_at(self, obj: Any, path: Path) -> tuple[bool, Any]:
        cur = obj
        for i, el in enumerate(path):
            if el == ".":
                return (True, True)
            if el.startswith("f:"):
                if not isinstance(cur, dict) or el[2:] not in cur:
                    return (False, None)
                cur = cur[el[2:]]
            elif el.startswith("k:"):
                if not isinstance(cur, list):
                    return (False, None)
                want = json.loads(el[2:])
                found = [
                    it for it in cur if isinstance(it, dict) and all(it.get(k) == v for k, v in want.items())
                ]
                if not found:
                    return (False, None)
                cur = found[0]
            elif el.startswith("v:"):
                want = json.loads(el[2:])
                if not isinstance(cur, list) or want not in cur:
                    return (False, None)
                return (True, want) if i == len(path) - 1 else (False, None)
        return (True, cur)

    def remove(self, obj: dict[str, Any], path: Path) -> None:
        """Delete the field (or list item, for a `.` path) at `path`; absent paths are ignored."""
        if not path:
            return
        if path[-1] == ".":
            parent_ok, parent = self.value_at(obj, path[:-2])
            if parent_ok and isinstance(parent, list):
                want = json.loads(path[-2][2:])
                parent[:] = [
                    it
                    for it in parent
                    if not (isinstance(it, dict) and all(it.get(k) == v for k, v in want.items()))
                ]
            return
        ok, parent = self.value_at(obj, path[:-1])
        if not ok:
            return
        last = path[-1]
        if last.startswith("f:") and isinstance(parent, dict):
            parent.pop(last[2:], None)
        elif last.startswith("v:") and isinstance(parent, list):
            want = json.loads(last[2:])
            parent[:] = [it for it in parent if it != want]

    # -- merging an applied configuration ----------------------------------------------------------
    def merge(self, live: Any, cfg: Any, names: tuple[str, ...] = ()) -> Any:
        """Merge an applied configuration into the live object, list by list as the schema says."""
        if isinstance(cfg, dict) and isinstance(live, dict) and not self.atomic_struct(names):
            out = dict(live)
            for k, v in cfg.items():
                if v is None:
                    out.pop(k, None)
                elif k in live:
                    out[k] = self.merge(live[k], v, (*names, k))
                else:
                    out[k] = copy.deepcopy(v)
            return out
        if isinstance(cfg, list) and isinstance(live, list):
            strategy, keys = self.list_strategy(names)
            if strategy == "map":
                merged = [copy.deepcopy(it) for it in live]
                index = {item_key(it, keys): i for i, it in enumerate(merged)}
                for item in cfg:
                    key = item_key(item, keys)
                    if key in index:
                        merged[index[key]] = self.merge(merged[index[key]], item, names)
                    else:
                        index[key] = len(merged)
                        merged.append(copy.deepcopy(item))
                return merged
            if strategy == "set":
                return [*live, *(copy.deepcopy(it) for it in cfg if it not in live)]
        return copy.deepcopy(cfg)


def to_fields_v1(paths: set[Path]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for path in sorted(paths):
        node = root
        for el in path:
            node = node.setdefault(el, {})
    return root


def from_fields_v1(tree: dict[str, Any], prefix: Path = ()) -> set[Path]:
    out: set[Path] = set()
    for el, sub in tree.items():
        path = (*prefix, el)
        if sub:
            out |= from_fields_v1(sub, path)
        else:
            out.add(path)
    return out


def path_to_text(path: Path) -> str:
    """`.spec.template.spec.containers[name="app"].image`, the way conflict messages name a field."""
    parts = []
    for el in path:
        if el == ".":
            continue
        if el.startswith("f:"):
            parts.append("." + el[2:])
        elif el.startswith("k:"):
            key = json.loads(el[2:])
            parts.append("[" + ",".join(f"{k}={json.dumps(v)}" for k, v in key.items()) + "]")
        elif el.startswith("v:"):
            parts.append(f"[={el[2:]}]")
    return "".join(parts)
