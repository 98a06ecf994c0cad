"""Kubernetes Events from the simulated controllers (what `kubectl describe` lists under Events).

Repeats of the same reason and message for the same object bump `count` and `lastTimestamp` of one
Event, as the real event recorder aggregates; Events older than an hour are removed, like the API
server's event TTL.
"""

from __future__ import annotations

import copy
import secrets

from orchestrator.sim.clock import Clock
from orchestrator.sim.resources import REGISTRY, ResourceType
from orchestrator.sim.store import Obj, ObjectStore, rfc3339

EVENT_TTL = 3600.0


def _events() -> ResourceType:
    rt = REGISTRY.by_kind("", "Event")
    assert rt is not None
    return rt


EVENTS = _events()


class EventRecorder:
    def __init__(self, store: ObjectStore, clock: Clock, component: str) -> None:
        self.store = store
        self.clock = clock
        self.component = component
        self._names: dict[
            tuple[str, str, str], tuple[str, float]
        ] = {}  # (uid, reason, message) -> (name, last)

    def record(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        """Record an Event about `obj` (call with the store lock held, as the controller does)."""
        meta = obj["metadata"]
        namespace = meta.get("namespace", "default")
        key = (meta["uid"], reason, message)
        now = self.clock.now()
        known = self._names.get(key)
        existing = self.store.peek(EVENTS, namespace, known[0]) if known else None
        if existing is not None and known is not None:
            event = copy.deepcopy(existing)
            event["count"] = event.get("count", 1) + 1
            event["lastTimestamp"] = rfc3339(now)
            self.store.replace(EVENTS, event)
            self._names[key] = (known[0], now)
            return
        name = f"{meta['name']}.{secrets.token_hex(8)}"
        self.store.create(
            EVENTS,
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": name, "namespace": namespace},
                "involvedObject": {
                    "apiVersion": obj.get("apiVersion", ""),
                    "kind": obj.get("kind", ""),
                    "name": meta["name"],
                    "namespace": namespace,
                    "uid": meta["uid"],
                    "resourceVersion": meta.get("resourceVersion", ""),
                },
                "reason": reason,
                "message": message,
                "type": type_,
                "count": 1,
                "firstTimestamp": rfc3339(now),
                "lastTimestamp": rfc3339(now),
                "source": {"component": self.component},
                "reportingComponent": self.component,
                "reportingInstance": "",
            },
        )
        self._names[key] = (name, now)

    def expire(self) -> None:
        """Remove the Events this recorder made that have not recurred for EVENT_TTL seconds."""
        now = self.clock.now()
        for key, (name, last) in list(self._names.items()):
            if now - last > EVENT_TTL:
                del self._names[key]
                for event in self.store.objects(EVENTS):
                    if event["metadata"]["name"] == name:
                        self.store.delete(EVENTS, event["metadata"]["namespace"], name)
