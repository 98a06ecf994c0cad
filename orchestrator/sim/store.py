"""Object storage for one simulated cluster: objects, the resourceVersion counter, and watch events.

Stored objects are never mutated in place: every write stores a new dict. Readers inside the emulator
may therefore hand out references (`peek`) without copying; the public `get`/`list` return copies.
All reads and writes take one re-entrant lock; writers that read-modify-write hold it throughout.
"""

from __future__ import annotations

import bisect
import copy
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from orchestrator.sim.clock import Clock, RealClock
from orchestrator.sim.errors import ApiError, already_exists, not_found
from orchestrator.sim.resources import REGISTRY, ResourceType
from orchestrator.sim.selectors import Requirement, labels_match

Obj = dict[str, Any]
Key = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped objects


def _namespaces() -> ResourceType:
    rt = REGISTRY.by_kind("", "Namespace")
    assert rt is not None
    return rt


_NAMESPACES = _namespaces()
_SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease", "istio-system")


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class WatchEvent:
    rv: int
    type: str  # ADDED | MODIFIED | DELETED
    storage_key: str
    obj: Obj
    old: Obj | None


class WatchExpired(Exception):
    """The requested resourceVersion is older than the kept event history (HTTP 410 in a watch)."""


def _spec_changed(old: Obj, new: Obj) -> bool:
    """generation moves when anything but metadata and status changes."""
    keys = (set(old) | set(new)) - {"metadata", "status", "apiVersion", "kind"}
    return any(old.get(k) != new.get(k) for k in keys)


def _owner_uids(obj: Obj | None) -> set[str]:
    refs = (obj or {}).get("metadata", {}).get("ownerReferences") or []
    return {str(r["uid"]) for r in refs if isinstance(r, dict) and r.get("uid")}


# The first type the registry lists for each storage key (as the scan of `_collect_dependents` found them).
_TYPE_OF_KEY: dict[str, ResourceType] = {}
for _type in REGISTRY.types:
    _TYPE_OF_KEY.setdefault(_type.storage_key, _type)
_TYPE_ORDER = {key: index for index, key in enumerate(_TYPE_OF_KEY)}


class ObjectStore:
    """Objects of one cluster by storage key (group/resource) and (namespace, name)."""

    def __init__(self, clock: Clock | None = None, history: int = 20000) -> None:
        self.clock: Clock = clock or RealClock()
        self.lock = threading.RLock()
        self._changed = threading.Condition(self.lock)
        self._rv = 0
        self._objects: dict[str, dict[Key, Obj]] = {}
        # owner uid -> (storage key, key) of the objects naming it in their ownerReferences, so deleting an
        # object finds its dependents without scanning every object of the cluster (with a fleet of
        # rollouts that scan was a fifth of the emulator's CPU: benchmarks/fleet.py); and each object's
        # creation number, to collect dependents in the order a scan of the store would have found them.
        self._dependents: dict[str, set[tuple[str, Key]]] = {}
        self._created: dict[tuple[str, Key], int] = {}
        self._events: list[WatchEvent] = []
        self._history = history
        self._listeners: list[Callable[[WatchEvent], None]] = []
        self._next_ip = 10
        self.closed = False
        for name in _SYSTEM_NAMESPACES:
            self.create(
                _NAMESPACES,
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": name},
                    "spec": {"finalizers": ["kubernetes"]},
                    "status": {"phase": "Active"},
                },
            )

    # -- reading ----------------------------------------------------------------------------------
    @property
    def resource_version(self) -> str:
        with self.lock:
            return str(self._rv)

    def peek(self, rt: ResourceType, namespace: str, name: str) -> Obj | None:
        """The stored object itself (do not mutate), or None."""
        with self.lock:
            return self._objects.get(rt.storage_key, {}).get((namespace if rt.namespaced else "", name))

    def get(self, rt: ResourceType, namespace: str, name: str) -> Obj:
        obj = self.peek(rt, namespace, name)
        if obj is None:
            raise not_found(rt.plural, name, rt.group)
        return copy.deepcopy(obj)

    def scan(
        self,
        rt: ResourceType,
        namespace: str | None = None,
        labels: list[Requirement] | None = None,
        fields: Callable[[Obj], bool] | None = None,
    ) -> tuple[list[Obj], str]:
        """Stored objects (references: do not mutate) matching the selectors, and the resourceVersion."""
        with self.lock:
            items = [
                obj
                for (ns, _name), obj in sorted(self._objects.get(rt.storage_key, {}).items())
                if (namespace is None or not rt.namespaced or ns == namespace)
                and labels_match(labels or [], obj.get("metadata", {}).get("labels"))
                and (fields is None or fields(obj))
            ]
            return items, str(self._rv)

    def objects(self, rt: ResourceType) -> list[Obj]:
        """Every stored object of a type, unordered (references: do not mutate); the fast path."""
        with self.lock:
            return list(self._objects.get(rt.storage_key, {}).values())

    def list_objects(
        self, rt: ResourceType, namespace: str | None = None, labels: list[Requirement] | None = None
    ) -> list[Obj]:
        items, _ = self.scan(rt, namespace, labels)
        return copy.deepcopy(items)

    # -- writing ----------------------------------------------------------------------------------
    def _bump(self) -> int:
        self._rv += 1
        return self._rv

    def _record(self, type_: str, rt: ResourceType, obj: Obj, old: Obj | None) -> None:
        self._index_owners(rt, obj, old, deleted=type_ == "DELETED")
        event = WatchEvent(self._rv, type_, rt.storage_key, obj, old)
        self._events.append(event)
        if len(self._events) > 2 * self._history:
            del self._events[: len(self._events) - self._history]
        self._changed.notify_all()
        for listener in list(self._listeners):
            listener(event)

    def _index_owners(self, rt: ResourceType, obj: Obj, old: Obj | None, *, deleted: bool) -> None:
        """Keep `_dependents` and `_created` true after a write (every write is recorded)."""
        meta = obj["metadata"]
        entry = (rt.storage_key, (meta.get("namespace", "") if rt.namespaced else "", meta["name"]))
        before = _owner_uids(old)
        after = set() if deleted else _owner_uids(obj)
        for uid in before - after:
            owned = self._dependents.get(uid)
            if owned is not None:
                owned.discard(entry)
                if not owned:
                    del self._dependents[uid]
        for uid in after - before:
            self._dependents.setdefault(uid, set()).add(entry)
        if deleted:
            self._created.pop(entry, None)
        elif old is None:
            self._created[entry] = self._rv

    def add_listener(self, listener: Callable[[WatchEvent], None]) -> None:
        """Called (under the store lock) after every write; keep it quick."""
        with self.lock:
            self._listeners.append(listener)

    def allocate_cluster_ip(self) -> str:
        with self.lock:
            self._next_ip += 1
            return f"10.96.{self._next_ip // 250}.{self._next_ip % 250 + 1}"

    def create(self, rt: ResourceType, obj: Obj, *, dry_run: bool = False) -> Obj:
        """Store a new object: assigns uid, creationTimestamp, generation and resourceVersion."""
        with self.lock:
            meta = obj.setdefault("metadata", {})
            namespace = meta.get("namespace", "") if rt.namespaced else ""
            name = meta["name"]
            if rt.namespaced:
                ns = self.peek(_NAMESPACES, "", namespace)
                if ns is None:
                    raise not_found("namespaces", namespace)
                if ns["metadata"].get("deletionTimestamp"):
                    raise ApiError(
                        403,
                        f'{rt.plural} "{name}" is forbidden: unable to create new content in namespace '
                        f"{namespace} because it is being terminated",
                        reason="Forbidden",
                    )
            bucket = self._objects.setdefault(rt.storage_key, {})
            if (namespace, name) in bucket:
                raise already_exists(rt.plural, name, rt.group)
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = rfc3339(self.clock.now())
            meta["generation"] = 1
            obj["apiVersion"] = rt.preferred_api_version
            obj["kind"] = rt.kind
            if dry_run:
                meta["resourceVersion"] = str(self._rv)
                return obj
            meta["resourceVersion"] = str(self._bump())
            bucket[(namespace, name)] = obj
            self._record("ADDED", rt, obj, None)
            return obj

    def replace(self, rt: ResourceType, new: Obj, *, dry_run: bool = False) -> Obj:
        """Store `new` over the current object of that name. An identical object is not a write."""
        with self.lock:
            meta = new["metadata"]
            key = (meta.get("namespace", "") if rt.namespaced else "", meta["name"])
            old = self._objects.get(rt.storage_key, {}).get(key)
            if old is None:
                raise not_found(rt.plural, meta["name"], rt.group)
            for field in ("uid", "creationTimestamp"):
                meta[field] = old["metadata"][field]
            meta["generation"] = old["metadata"].get("generation", 1) + (1 if _spec_changed(old, new) else 0)
            new["apiVersion"] = rt.preferred_api_version
            new["kind"] = rt.kind
            meta["resourceVersion"] = old["metadata"]["resourceVersion"]
            if new == old:
                return old
            if dry_run:
                return new
            meta["resourceVersion"] = str(self._bump())
            self._objects[rt.storage_key][key] = new
            self._record("MODIFIED", rt, new, old)
            return new

    def delete(
        self, rt: ResourceType, namespace: str, name: str, *, orphan: bool = False, dry_run: bool = False
    ) -> Obj:
        """Remove an object, its dependents (by ownerReferences) and, for a namespace, its contents."""
        with self.lock:
            key = (namespace if rt.namespaced else "", name)
            old = self._objects.get(rt.storage_key, {}).get(key)
            if old is None:
                raise not_found(rt.plural, name, rt.group)
            if dry_run:
                return old
            if rt.kind == "Namespace":
                return self._terminate_namespace(old)
            return self._remove(rt, key, old, orphan)

    def _remove(self, rt: ResourceType, key: Key, old: Obj, orphan: bool) -> Obj:
        del self._objects[rt.storage_key][key]
        gone = {**old, "metadata": {**old["metadata"], "resourceVersion": str(self._bump())}}
        self._record("DELETED", rt, gone, old)
        self._collect_dependents(old["metadata"]["uid"], orphan)
        return gone

    def _terminate_namespace(self, ns: Obj) -> Obj:
        """Namespaces go Terminating first; `finalize_namespaces` (the controller) empties and removes."""
        if ns["metadata"].get("deletionTimestamp"):
            return ns
        new = copy.deepcopy(ns)
        new["metadata"]["deletionTimestamp"] = rfc3339(self.clock.now())
        new.setdefault("status", {})["phase"] = "Terminating"
        new["metadata"]["resourceVersion"] = str(self._bump())
        self._objects[_NAMESPACES.storage_key][("", ns["metadata"]["name"])] = new
        self._record("MODIFIED", _NAMESPACES, new, ns)
        return new

    def finalize_namespaces(self) -> None:
        with self.lock:
            for (_, name), ns in list(self._objects.get(_NAMESPACES.storage_key, {}).items()):
                if ns["metadata"].get("deletionTimestamp"):
                    self._delete_namespace_contents(name)
                    self._remove(_NAMESPACES, ("", name), ns, orphan=False)

    def _delete_namespace_contents(self, namespace: str) -> None:
        for other in REGISTRY.types:
            if other.namespaced:
                for ns, obj_name in list(self._objects.get(other.storage_key, {})):
                    if ns == namespace:
                        self.delete(other, ns, obj_name)

    def _collect_dependents(self, owner_uid: str, orphan: bool) -> None:
        # In the order a scan would find them: by type as the registry lists them, then by creation.
        found = sorted(
            self._dependents.get(owner_uid, ()),
            key=lambda entry: (_TYPE_ORDER[entry[0]], self._created.get(entry, 0)),
        )
        for storage_key, (ns, obj_name) in found:
            other = _TYPE_OF_KEY[storage_key]
            obj = self._objects.get(storage_key, {}).get((ns, obj_name))
            if obj is None:  # already gone with another dependent
                continue
            refs = obj.get("metadata", {}).get("ownerReferences") or []
            if orphan:
                new = copy.deepcopy(obj)
                new["metadata"]["ownerReferences"] = [r for r in refs if r.get("uid") != owner_uid]
                if not new["metadata"]["ownerReferences"]:
                    del new["metadata"]["ownerReferences"]
                self.replace(other, new)
            else:
                self.delete(other, ns, obj_name)

    # -- watching ---------------------------------------------------------------------------------
    def close(self) -> None:
        with self.lock:
            self.closed = True
            self._changed.notify_all()

    def events_after(self, rv: int) -> list[WatchEvent]:
        """Events with resourceVersion > rv; WatchExpired if the history no longer reaches back that far."""
        with self.lock:
            if self._events and rv < self._events[0].rv - 1:
                raise WatchExpired(f"too old resource version: {rv} ({self._events[0].rv - 1})")
            start = bisect.bisect_right(self._events, rv, key=lambda e: e.rv)
            return self._events[start:]

    def wait_for_change(self, after_rv: int, timeout: float) -> bool:
        """Block until a write after `after_rv` (True) or the timeout / close (False)."""
        with self.lock:
            if self._rv > after_rv:
                return True
            self._changed.wait(timeout)
            return self._rv > after_rv and not self.closed

    def watch(
        self,
        rt: ResourceType,
        namespace: str | None,
        matches: Callable[[Obj], bool],
        since_rv: int | None,
        deadline: float,
        now: Callable[[], float],
        stop: Callable[[], bool] = lambda: False,
    ) -> Iterator[tuple[str, Obj]]:
        """(type, object) pairs; starts with ADDED for every current object when `since_rv` is None.

        A watch with a selector sees an object that stops matching as DELETED and one that starts
        matching as ADDED, as the API server's filtered watches do.
        """

        def visible(obj: Obj) -> bool:
            ns = obj.get("metadata", {}).get("namespace", "")
            return (namespace is None or not rt.namespaced or ns == namespace) and matches(obj)

        if since_rv is None:
            items, rv_text = self.scan(rt, namespace, None, visible)
            cursor = int(rv_text)
            for obj in items:
                yield "ADDED", obj
        else:
            cursor = since_rv
        while not self.closed and not stop():
            for event in self.events_after(cursor):
                cursor = event.rv
                if event.storage_key != rt.storage_key:
                    continue
                now_visible = visible(event.obj)
                was_visible = event.old is not None and visible(event.old)
                if event.type == "DELETED":
                    if was_visible:
                        yield "DELETED", event.obj
                elif now_visible and (event.type == "ADDED" or not was_visible):
                    yield "ADDED", event.obj
                elif now_visible:
                    yield "MODIFIED", event.obj
                elif was_visible:
                    yield "DELETED", event.obj
            remaining = deadline - now()
            if remaining <= 0:
                return
            self.wait_for_change(cursor, min(remaining, 1.0))
