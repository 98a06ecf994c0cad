"""The three patch formats: JSON merge patch (RFC 7386), JSON patch (RFC 6902), strategic merge patch."""

from __future__ import annotations

import copy
from typing import Any

from orchestrator.sim.errors import ApiError
from orchestrator.sim.fields import Schema, item_key


def json_merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = json_merge_patch(out.get(key), value)
    return out


# -- JSON patch ------------------------------------------------------------------------------------
def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise ApiError(422, f"invalid JSON pointer {path!r}: must start with /")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _resolve(doc: Any, parts: list[str], path: str) -> Any:
    cur = doc
    for part in parts:
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            raise ApiError(
                422,
                f"the server rejected our request due to an error in our request: path {path!r} not found",
            )
    return cur


def _add(doc: Any, path: str, value: Any) -> Any:
    parts = _pointer(path)
    if not parts:
        return value
    parent = _resolve(doc, parts[:-1], path)
    last = parts[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        elif last.isdigit() and int(last) <= len(parent):
            parent.insert(int(last), value)
        else:
            raise ApiError(422, f"invalid array index in JSON patch path {path!r}")
    else:
        raise ApiError(422, f"JSON patch path {path!r} does not point into an object or array")
    return doc


def _remove(doc: Any, path: str) -> tuple[Any, Any]:
    parts = _pointer(path)
    if not parts:
        raise ApiError(422, "JSON patch cannot remove the whole document")
    parent = _resolve(doc, parts[:-1], path)
    last = parts[-1]
    if isinstance(parent, dict) and last in parent:
        return doc, parent.pop(last)
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return doc, parent.pop(int(last))
    raise ApiError(422, f"JSON patch remove: path {path!r} not found")


def _replace(doc: Any, path: str, value: Any) -> Any:
    parts = _pointer(path)
    if not parts:
        return value
    parent = _resolve(doc, parts[:-1], path)
    last = parts[-1]
    if isinstance(parent, dict) and last in parent:
        parent[last] = value
    elif isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        parent[int(last)] = value
    else:
        raise ApiError(422, f"JSON patch replace: path {path!r} not found")
    return doc


def json_patch(target: Any, ops: Any) -> Any:
    if not isinstance(ops, list):
        raise ApiError(400, "a JSON patch must be a list of operations")
    doc = copy.deepcopy(target)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise ApiError(400, f"malformed JSON patch operation: {op!r}")
        kind, path = op["op"], op["path"]
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            doc, _ = _remove(doc, path)
        elif kind == "replace":
            doc = _replace(doc, path, copy.deepcopy(op.get("value")))
        elif kind == "move":
            doc, value = _remove(doc, op["from"])
            doc = _add(doc, path, value)
        elif kind == "copy":
            doc = _add(doc, path, copy.deepcopy(_resolve(doc, _pointer(op["from"]), op["from"])))
        elif kind == "test":
            if _resolve(doc, _pointer(path), path) != op.get("value"):
                raise ApiError(422, f"JSON patch test failed at {path!r}")
        else:
            raise ApiError(400, f"unknown JSON patch operation {kind!r}")
    return doc


# -- strategic merge patch -------------------------------------------------------------------------
def strategic_merge_patch(target: dict[str, Any], patch: Any, schema: Schema) -> dict[str, Any]:
    if schema.custom:
        raise ApiError(
            415,
            "the body of the request was in an unknown format - accepted media types include: "
            "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
        )
    if not isinstance(patch, dict):
        raise ApiError(400, "a strategic merge patch must be a JSON object")
    result = _smp_map(target, patch, schema, ())
    return result if isinstance(result, dict) else {}


def _smp_map(orig: Any, patch: dict[str, Any], schema: Schema, names: tuple[str, ...]) -> Any:
    directive = patch.get("$patch")
    if directive == "delete":
        return None
    if directive == "replace" or schema.atomic_struct(names):
        return {k: copy.deepcopy(v) for k, v in patch.items() if not k.startswith("$")}
    out = dict(orig) if isinstance(orig, dict) else {}
    orders: dict[str, list[Any]] = {}
    for key, value in patch.items():
        if key.startswith("$setElementOrder/"):
            orders[key.split("/", 1)[1]] = value
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(out.get(field), list):
                out[field] = [v for v in out[field] if v not in value]
            continue
        if key.startswith("$"):
            continue
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict):
            merged = _smp_map(out.get(key), value, schema, (*names, key))
            if merged is None:
                out.pop(key, None)
            else:
                out[key] = merged
        elif isinstance(value, list):
            out[key] = _smp_list(out.get(key), value, schema, (*names, key))
        else:
            out[key] = value
    retain = patch.get("$retainKeys")
    if isinstance(retain, list):
        out = {k: v for k, v in out.items() if k in retain}
    for field, order in orders.items():
        if isinstance(out.get(field), list):
            out[field] = _reorder(out[field], order, schema, (*names, field))
    return out


def _smp_list(orig: Any, patch: list[Any], schema: Schema, names: tuple[str, ...]) -> list[Any]:
    strategy, keys = schema.list_strategy(names)
    current = list(orig) if isinstance(orig, list) else []
    if any(isinstance(it, dict) and it.get("$patch") == "replace" for it in patch):
        return [copy.deepcopy(it) for it in patch if not (isinstance(it, dict) and "$patch" in it)]
    if strategy == "set":
        return [*current, *(copy.deepcopy(it) for it in patch if it not in current)]
    if strategy != "map":
        return copy.deepcopy(patch)
    out = [copy.deepcopy(it) for it in current]
    for item in patch:
        if not isinstance(item, dict):
            raise ApiError(400, f"list {'.'.join(names)} merges by {keys}; got a non-object item {item!r}")
        key = item_key({k: v for k, v in item.items() if k != "$patch"}, keys)
        index = next((i for i, it in enumerate(out) if item_key(it, keys) == key), None)
        if item.get("$patch") == "delete":
            if index is not None:
                out.pop(index)
            continue
        if index is None:
            out.append(_smp_map({}, item, schema, names))
        else:
            out[index] = _smp_map(out[index], item, schema, names)
    return out


def _reorder(items: list[Any], order: list[Any], schema: Schema, names: tuple[str, ...]) -> list[Any]:
    strategy, keys = schema.list_strategy(names)
    if strategy != "map":
        return items
    rank = {item_key(o, keys): i for i, o in enumerate(order)}
    return sorted(items, key=lambda it: rank.get(item_key(it, keys), len(rank)))
