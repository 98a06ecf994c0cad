"""Server-side apply and field ownership (`metadata.managedFields`).

Apply merges a manager's configuration into the live object, takes ownership of exactly the fields
it names, removes the fields it used to own and no longer names (unless someone else owns them), and
refuses (409) to change a field another manager owns unless forced. Plain updates and patches move
the fields they change to their manager, as the API server does.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from orchestrator.sim.errors import ApiError
from orchestrator.sim.fields import Path, Schema, from_fields_v1, path_to_text, to_fields_v1


@dataclass
class ManagerEntry:
    manager: str
    operation: str  # "Apply" | "Update"
    api_version: str
    time: str
    subresource: str = ""
    fields: set[Path] = field(default_factory=set)

    def same_owner(self, manager: str, operation: str, subresource: str) -> bool:
        return (self.manager, self.operation, self.subresource) == (manager, operation, subresource)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
            "time": self.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": to_fields_v1(self.fields),
        }
        if self.subresource:
            out["subresource"] = self.subresource
        return out


def read_managers(obj: dict[str, Any] | None) -> list[ManagerEntry]:
    if not obj:
        return []
    entries = []
    for raw in obj.get("metadata", {}).get("managedFields") or []:
        entries.append(
            ManagerEntry(
                manager=raw.get("manager", ""),
                operation=raw.get("operation", "Update"),
                api_version=raw.get("apiVersion", ""),
                time=raw.get("time", ""),
                subresource=raw.get("subresource", ""),
                fields=from_fields_v1(raw.get("fieldsV1") or {}),
            )
        )
    return entries


def write_managers(obj: dict[str, Any], entries: list[ManagerEntry]) -> None:
    kept = [e.to_json() for e in entries if e.fields]
    meta = obj.setdefault("metadata", {})
    if kept:
        meta["managedFields"] = kept
    else:
        meta.pop("managedFields", None)


def _scope(paths: set[Path], subresource: str) -> set[Path]:
    """The status subresource owns only status; the main resource never does."""
    if subresource == "status":
        return {p for p in paths if p[:1] == ("f:status",)}
    return {p for p in paths if p[:1] != ("f:status",)}


def _config_for_merge(cfg: dict[str, Any], subresource: str) -> dict[str, Any]:
    cfg = copy.deepcopy(cfg)
    cfg.pop("apiVersion", None)
    cfg.pop("kind", None)
    meta = cfg.pop("metadata", None) or {}
    if subresource == "status":
        return {"status": cfg.get("status")} if cfg.get("status") is not None else {}
    cfg.pop("status", None)
    kept_meta = {
        k: v for k, v in meta.items() if k in ("labels", "annotations", "finalizers", "ownerReferences")
    }
    if kept_meta:
        cfg["metadata"] = kept_meta
    return cfg


def server_side_apply(
    live: dict[str, Any] | None,
    cfg: dict[str, Any],
    *,
    manager: str,
    force: bool,
    schema: Schema,
    api_version: str,
    now: str,
    subresource: str = "",
) -> dict[str, Any]:
    """The object after `manager` applies `cfg` to `live` (None when creating). Raises 409 on conflicts."""
    base = copy.deepcopy(live) if live else {}
    entries = read_managers(live)
    applied = _scope(schema.field_set(cfg, include_status=True), subresource)
    merged = schema.merge(base, _config_for_merge(cfg, subresource))

    conflicts: list[tuple[ManagerEntry, Path]] = []
    for entry in entries:
        if entry.same_owner(manager, "Apply", subresource):
            continue
        for path in sorted(applied & entry.fields):
            if schema.value_at(base, path) != schema.value_at(merged, path):
                conflicts.append((entry, path))
    if conflicts and not force:
        raise _conflict_error(conflicts, base)
    for entry, path in conflicts:
        entry.fields.discard(path)

    own = next((e for e in entries if e.same_owner(manager, "Apply", subresource)), None)
    previously = own.fields if own else set()
    others = set().union(*(e.fields for e in entries if e is not own)) if entries else set()
    # Whole list items first (by their `.` marker, outermost first), so an item is never left half
    # removed without its key fields; then single fields, deepest first.
    released = previously - applied - others
    for path in sorted((p for p in released if p[-1] == "."), key=len):
        schema.remove(merged, path)
    for path in sorted((p for p in released if p[-1] != "."), key=len, reverse=True):
        schema.remove(merged, path)

    if own is None:
        own = ManagerEntry(manager, "Apply", api_version, now, subresource)
        entries.append(own)
    if own.fields != applied or own.api_version != api_version:
        own.fields = applied
        own.api_version = api_version
        own.time = now
    merged.setdefault("metadata", {})
    write_managers(merged, entries)
    return merged


def _conflict_error(conflicts: list[tuple[ManagerEntry, Path]], base: dict[str, Any]) -> ApiError:
    name = base.get("metadata", {}).get("name", "")
    lines = [
        f'conflict with "{e.manager}"'
        + (f" using {e.api_version}" if e.api_version else "")
        + f": {path_to_text(p)}"
        for e, p in conflicts
    ]
    plural = "s" if len(lines) > 1 else ""
    message = f"Apply failed with {len(lines)} conflict{plural}: " + "\n".join(lines)
    return ApiError(
        409,
        message,
        reason="Conflict",
        details={
            "name": name,
            "causes": [
                {
                    "reason": "FieldManagerConflict",
                    "message": f'conflict with "{e.manager}"',
                    "field": path_to_text(p),
                }
                for e, p in conflicts
            ],
        },
    )


def track_update(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    *,
    manager: str,
    schema: Schema,
    api_version: str,
    now: str,
    subresource: str = "",
) -> None:
    """Give `manager` (operation Update) the fields this write changed; take them from everyone else."""
    entries = read_managers(old)
    old_fields = _scope(schema.field_set(old, include_status=True), subresource) if old else set()
    new_fields = _scope(schema.field_set(new, include_status=True), subresource)
    changed = {
        p for p in new_fields if p not in old_fields or schema.value_at(old, p) != schema.value_at(new, p)
    }
    removed = old_fields - new_fields
    if not changed and not removed:
        write_managers(new, entries)
        return
    own = next((e for e in entries if e.same_owner(manager, "Update", subresource)), None)
    for entry in entries:
        if entry is not own:
            entry.fields -= changed | removed
    if own is None and changed:
        own = ManagerEntry(manager, "Update", api_version, now, subresource)
        entries.append(own)
    if own is not None:
        own.fields = (own.fields | changed) - removed
        own.time = now
        own.api_version = api_version
    write_managers(new, entries)
