"""What the webhook receiver needs of the checkout's configuration, read again only when it changed.

Each delivery needs the service names, each service's promotion paths and first environments (the first of
each path) and the repository its build pushes to. Parsing the pipelines for every delivery costs milliseconds
of CPU on the hot path; the files' names, sizes and modification times (one `scandir` of two folders) tell
whether the last reading still holds.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.config import Project
from orchestrator.errors import OrchestratorError


@dataclass(frozen=True)
class Catalog:
    services: list[str]
    # service -> the first environment of each of its promotion paths (a flat `promotion:` is one path)
    first_environments: dict[str, list[str]]
    problems: dict[str, str] = field(default_factory=dict)  # service -> why it has no first environment
    built_from: dict[str, str] = field(default_factory=dict)  # service -> build.repository
    paths: dict[str, list[list[str]]] = field(default_factory=dict)  # service -> its promotion paths


def _read(root: Path) -> Catalog:
    project = Project(root)
    first: dict[str, list[str]] = {}
    problems: dict[str, str] = {}
    built: dict[str, str] = {}
    paths: dict[str, list[list[str]]] = {}
    for service in project.service_names:
        try:
            pipeline = project.pipeline(service)
        except OrchestratorError as exc:
            problems[service] = f"its pipeline cannot be read: {exc}"
            continue
        if pipeline.build is not None:
            built[service] = pipeline.build.repository
        if pipeline.promotion_paths:
            paths[service] = [list(path) for path in pipeline.promotion_paths if path]
            first[service] = [path[0] for path in pipeline.promotion_paths if path]
        else:
            problems[service] = "its pipeline has no promotion path, so no first environment"
    return Catalog(list(project.service_names), first, problems, built, paths)


def _signature(root: str) -> tuple[tuple[str, int, int], ...]:
    entries: list[tuple[str, int, int]] = []
    for folder in ("pipelines", "environments"):
        try:
            with os.scandir(os.path.join(root, folder)) as listing:  # a str path: this is on every delivery
                for entry in listing:
                    stat = entry.stat()
                    entries.append((f"{folder}/{entry.name}", stat.st_mtime_ns, stat.st_size))
        except FileNotFoundError:
            entries.append((folder, -1, -1))
    return tuple(sorted(entries))


class CatalogCache:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._root = str(root)
        self._lock = threading.Lock()
        self._signature: tuple[tuple[str, int, int], ...] | None = None
        self._catalog: Catalog | None = None

    def get(self) -> Catalog:
        signature = _signature(self._root)
        with self._lock:
            if self._catalog is None or signature != self._signature:
                self._catalog, self._signature = _read(self.root), signature
            return self._catalog
