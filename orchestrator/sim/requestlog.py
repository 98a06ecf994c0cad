"""The request log of one simulated cluster, so tests can count what a client did (e.g. writes)."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import Any

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class LoggedRequest:
    time: float
    method: str
    path: str
    query: str
    status: int
    verb: str  # "read" | "write" | "dry-run"
    user_agent: str = ""
    fault: str | None = None  # the injected fault that answered, if any

    @property
    def is_write(self) -> bool:
        return self.verb == "write"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class RequestLog:
    def __init__(self, limit: int = 100_000) -> None:
        self._lock = threading.Lock()
        self._entries: list[LoggedRequest] = []
        self._limit = limit

    def record(self, entry: LoggedRequest) -> None:
        with self._lock:
            self._entries.append(entry)
            if len(self._entries) > self._limit:
                del self._entries[: len(self._entries) - self._limit]

    def entries(self) -> list[LoggedRequest]:
        with self._lock:
            return list(self._entries)

    def writes(self) -> list[LoggedRequest]:
        return [e for e in self.entries() if e.is_write]

    def reads(self) -> list[LoggedRequest]:
        return [e for e in self.entries() if e.verb == "read"]

    def reset(self) -> None:
        with self._lock:
            self._entries.clear()


def verb_class(method: str, query: str = "") -> str:
    """POST/PUT/PATCH/DELETE are writes, or dry runs with dryRun=All (nothing stored); the rest reads."""
    if method.upper() not in WRITE_METHODS:
        return "read"
    return "dry-run" if "dryRun=All" in query else "write"
