"""Watch responses: newline-delimited JSON events (ADDED, MODIFIED, DELETED, BOOKMARK, ERROR).

Without a resourceVersion (or with "0") a watch first lists every current object as ADDED; from a
resourceVersion it replays what happened since; `sendInitialEvents=true` lists first and marks the
end of the list with a BOOKMARK annotated `k8s.io/initial-events-end`, as watch-list clients expect.
A resourceVersion older than the kept history gets an ERROR event with a 410 Expired Status.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from orchestrator.sim import tables
from orchestrator.sim.clock import Clock
from orchestrator.sim.errors import status_body
from orchestrator.sim.resources import ResourceType
from orchestrator.sim.store import Obj, ObjectStore, WatchExpired


@dataclass(frozen=True)
class WatchRequest:
    rt: ResourceType
    api_version: str  # the version the client asked for (Istio kinds are served at several)
    namespace: str | None
    matches: Callable[[Obj], bool]  # label and field selectors
    since: int | None  # None: start with the current objects
    initial_events: bool  # sendInitialEvents=true
    timeout: float  # seconds
    table: str | None  # includeObject of a Table watch (kubectl get -w), None for plain objects
    stop: Callable[[], bool]  # the connection is going away


def _line(event_type: str, obj: Any) -> bytes:
    return json.dumps({"type": event_type, "object": obj}, separators=(",", ":")).encode() + b"\n"


def watch_stream(store: ObjectStore, clock: Clock, w: WatchRequest) -> Iterator[bytes]:
    def render(obj: Obj) -> Obj:
        out = obj if obj.get("apiVersion") == w.api_version else {**obj, "apiVersion": w.api_version}
        if w.table is not None:
            return tables.table(w.rt.kind, [out], obj["metadata"]["resourceVersion"], clock.now(), w.table)
        return out

    since = w.since
    if w.initial_events:
        items, rv = store.scan(w.rt, w.namespace, None, w.matches)
        for obj in items:
            yield _line("ADDED", render(obj))
        bookmark = {
            "kind": w.rt.kind,
            "apiVersion": w.api_version,
            "metadata": {"resourceVersion": rv, "annotations": {"k8s.io/initial-events-end": "true"}},
        }
        yield _line("BOOKMARK", bookmark)
        since = int(rv)
    deadline = time.monotonic() + w.timeout
    try:
        for event_type, obj in store.watch(
            w.rt, w.namespace, w.matches, since, deadline, time.monotonic, w.stop
        ):
            yield _line(event_type, render(obj))
    except WatchExpired as exc:
        yield _line("ERROR", status_body(410, str(exc), "Expired"))
