"""Other managers writing the objects a client is writing: the emulator's conflict storms.

A `Rival` owns a change to one object (say, its own route on a VirtualService) and writes it the way a real
controller would: a read and a PUT through the cluster's API, under its own field manager. It writes

- just before a write someone else sends to that object, up to `preempt` times in a row (then one write
  is let through), so a client whose write is guarded by the resourceVersion it read is refused with 409
  exactly `preempt` times before it gets through: a deterministic storm that a bounded retry must survive;
- and, once started, every `interval` seconds on its own thread, as a controller reconciling in a loop,
  except while a write it preempted `preempt` times is owed its pass: on a loaded machine the loop would
  otherwise land between that write's read and PUT again and again, each time starting a new streak, and the
  storm would no longer be the bounded one the rival promises.

Its writes go to the API directly, not through the listener, so the request log holds only the client's
requests (and their 409s).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from orchestrator.sim.api import Request, Response

Obj = dict[str, Any]
Handler = Callable[[Request], Response]

_WRITES = frozenset({"PUT", "PATCH", "POST", "DELETE"})


@dataclass
class Rival:
    path: str  # the object's API path, as a client requests it
    change: Callable[[Obj, int], None]  # makes the rival's change on the live object; gets a write counter
    manager: str = "ops-team"
    preempt: int = 0  # write first, before up to this many of someone else's writes in a row
    writes: list[float] = field(default_factory=list)  # when each of the rival's writes landed
    _streak: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None


class Rivals:
    """The rivals of one cluster, and the API handler that lets them write first."""

    def __init__(self, api: Handler, lock: Any) -> None:
        self._api = api
        self._lock = lock  # the object store's (re-entrant) lock: a rival's read and write are one step
        self._rivals: list[Rival] = []

    def add(self, rival: Rival) -> Rival:
        self._rivals.append(rival)
        return rival

    def start(self, rival: Rival, interval: float) -> None:
        """Keep writing every `interval` seconds until `stop` (or `clear`)."""

        def loop() -> None:
            while not rival._stop.wait(interval):
                with self._lock:
                    if not (rival.preempt and rival._streak >= rival.preempt):
                        self._write(rival)

        rival._thread = threading.Thread(target=loop, name=f"sim-rival-{rival.manager}", daemon=True)
        rival._thread.start()

    def stop(self, rival: Rival) -> None:
        rival._stop.set()
        if rival._thread is not None:
            rival._thread.join(timeout=5)
        if rival in self._rivals:
            self._rivals.remove(rival)

    def clear(self) -> None:
        for rival in list(self._rivals):
            self.stop(rival)

    def handle(self, req: Request) -> Response:
        """Serve `req`, after the rivals of its object (when it writes one) had their turn."""
        if not self._rivals or req.method.upper() not in _WRITES:
            return self._api(req)
        path = req.path.rstrip("/")
        rivals = [r for r in self._rivals if r.path == path and r.manager != req.query.get("fieldManager")]
        with self._lock:  # the rival's write and the request are served back to back
            went_first = [r for r in rivals if r._streak < r.preempt and self._write(r)]
            response = self._api(req)
            for rival in rivals:
                if response.status != 409:
                    rival._streak = 0
                elif rival in went_first:
                    rival._streak += 1
                # A 409 this rival did not cause leaves its streak: the next write is still owed its pass.
        return response

    def _write(self, rival: Rival) -> bool:
        """Read the object, make the rival's change, PUT it; False when the object is not there."""
        with self._lock:
            got = self._api(Request("GET", rival.path))
            if got.status != 200:
                return False
            obj = json.loads(got.body)
            rival.change(obj, len(rival.writes) + 1)
            put = self._api(
                Request(
                    "PUT",
                    rival.path,
                    query={"fieldManager": rival.manager},
                    headers={"content-type": "application/json"},
                    body=json.dumps(obj).encode(),
                )
            )
            if put.status != 200:
                return False
            rival.writes.append(time.time())  # the request log's clock
            return True
