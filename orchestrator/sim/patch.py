"""The three patch formats: JSON merge patch (RFC 7386), JSON patch (RFC 6902), strategic merge patch."""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch

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
def json_patch(target: Any, ops: Any) -> Any:
    """RFC 6902 through the `jsonpatch` library; its errors become the API server's answers: 400 for a
    patch that is not a list of well-formed operations, 422 for one that does not apply to this object.
    Either way the object is untouched: the operations run on a copy, one by one to name the one at fault."""
    if not isinstance(ops, list):
        raise ApiError(400, "a JSON patch must be a list of operations")
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise ApiError(400, f"malformed JSON patch operation: {op!r}")
    doc = copy.deepcopy(target)
    for index, op in enumerate(ops):
        where = f"JSON patch operation {index} ({op['op']} {op['path']!r})"
        try:
            doc = jsonpatch.JsonPatch([op]).apply(doc, in_place=True)
        except jsonpatch.JsonPatchTestFailed as exc:
            raise ApiError(422, f"{where}: test failed: {_short(exc)}") from None
        except jsonpatch.InvalidJsonPatch as exc:
            raise ApiError(400, f"{where}: invalid: {_short(exc)}") from None
        except (jsonpatch.JsonPatchConflict, jsonpatch.JsonPointerException) as exc:
            raise ApiError(
                422, f"the server rejected our request due to an error in our request: {where}: {_short(exc)}"
            ) from None
    return doc


def _short(exc: Exception) -> str:
    """The library's message without the document it quotes ("member 'x' not found in {...}")."""
    message = str(exc)
    for cut in (" in {", " in ["):
        message = message.split(cut, 1)[0]
    return message


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
