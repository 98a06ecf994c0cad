"""Doubles for testing the rollout engine as a state machine: an in-memory cluster, a fake clock, a gate
whose verdict the test decides, and a process kill.

`MemoryCluster` keeps what a cluster serves for one service (stable and canary versions, the canary's
replicas, the traffic split, managed routes); `MemoryWorkload` implements the engine's `Workload` protocol on
it with the same idempotent semantics as `ClusterWorkload` (only differences are written, and counted).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from orchestrator.config import ClusterConfig, Environment, Pipeline
from orchestrator.errors import OrchestratorError
from orchestrator.github.pulls import PullRequest
from orchestrator.gitops.repository import GitOpsError
from orchestrator.render.manifests import RenderedSet, environment_hash
from orchestrator.rollout.desired import Change, Committed, Proposed
from orchestrator.rollout.gates import AnalysisGate, GateResult
from orchestrator.rollout.plan import Analyze
from orchestrator.rollout.workloads import Workload
from orchestrator.traffic.base import HeaderMatch


class MemoryDesiredState:
    """The GitOps repository as a list of commits: each a (environment, service) -> manifest hash map."""

    def __init__(self) -> None:
        self.commits: list[tuple[str, Change]] = []
        self.held: dict[tuple[str, str], tuple[str, str]] = {}  # -> (sha, environment hash)
        self.fail: str | None = None  # the next commit fails with this reason

    def commit(self, environment: Environment, change: Change) -> Committed:
        if self.fail is not None:
            reason, self.fail = self.fail, None
            raise GitOpsError(f"GitOps repository memory: {reason}")
        key, content = (environment.name, change.service), environment_hash(list(change.sets))
        held = self.held.get(key)
        if held is not None and held[1] == content:
            return Committed(held[0], created=False, sets=list(change.sets))
        sha = hashlib.sha1(f"{len(self.commits)}:{content}".encode()).hexdigest()
        self.commits.append((sha, change))
        self.held[key] = (sha, content)
        return Committed(sha, created=True, sets=list(change.sets))

    def propose(self, environment: Environment, change: Change) -> Proposed | Committed:
        raise GitOpsError("GitOps repository memory: pull requests are tested against git and a GitHub fake")

    def withdraw(self, environment: Environment, pull_request: PullRequest) -> None:
        raise GitOpsError("GitOps repository memory: pull requests are tested against git and a GitHub fake")

    def read(self, environment: Environment, commit: str, sets: Sequence[RenderedSet]) -> list[RenderedSet]:
        held = {s.cluster: s for sha, change in self.commits if sha == commit for s in change.sets}
        if not held:
            raise GitOpsError(f"GitOps repository memory has no commit {commit} in {environment.name}")
        return [held[s.cluster] for s in sets]


class Killed(BaseException):
    """SIGKILL, as seen from inside the process: nothing catches it, no `finally` of ours matters."""


class FakeClock:
    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.t = start

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += max(seconds, 0.0)

    def advance(self, seconds: float) -> None:
        self.t += seconds


@dataclass
class MemoryCluster:
    name: str
    stable: str | None = None
    canary: str | None = None  # the version the canary runs (None: no canary workload)
    canary_replicas: int = 0
    canary_subset: str | None = None  # the version the DestinationRule's canary subset selects
    weight: int = 0  # canary's share of traffic
    routes: dict[str, Any] = field(default_factory=dict)  # managed header routes and mirrors
    down: bool = False
    writes: int = 0

    def reach(self) -> None:
        if self.down:
            raise OrchestratorError(f"cluster {self.name} is unreachable: connection refused")

    def at_rest(self) -> bool:
        return self.weight == 0 and self.canary_replicas == 0 and not self.routes


@dataclass
class Faults:
    """What goes wrong next: a kill after `kill_after` more cluster operations, a crash in one."""

    kill_after: int | None = None
    kill_before_write: bool = True
    crash_in: str | None = None  # cluster whose next operation raises a plain RuntimeError (a bug)
    crash_operation: str | None = None  # with crash_in: only its next operation of this name (e.g. "promote")
    kill_on: str | None = None  # the next operation of this name (e.g. "rollback") is where the process dies
    _kill_after_write: bool = field(default=False, repr=False)

    def before(self, cluster: MemoryCluster, operation: str) -> None:
        cluster.reach()
        if self.kill_on == operation:
            self.kill_on = None
            raise Killed()
        if self.crash_in == cluster.name and self.crash_operation in (None, operation):
            self.crash_in = self.crash_operation = None
            raise RuntimeError(f"router bug in {cluster.name}")
        if self.kill_after is not None:
            if self.kill_after <= 0:
                self.kill_after = None
                if self.kill_before_write:
                    raise Killed()
                self._kill_after_write = True
            else:
                self.kill_after -= 1

    def after(self) -> None:
        if self._kill_after_write:
            self._kill_after_write = False
            raise Killed()


class MemoryRoutes:
    def __init__(self, workload: MemoryWorkload) -> None:
        self.workload = workload

    def set_header_route(self, name: str, matches: list[HeaderMatch]) -> bool:
        return self.workload._op(
            lambda c: _set(c.routes, f"route:{name}", [repr(m) for m in matches] or None)
        )

    def set_mirror(self, name: str, percentage: float) -> bool:
        return self.workload._op(lambda c: _set(c.routes, f"mirror:{name}", percentage or None))


def _set(routes: dict[str, Any], key: str, value: Any) -> bool:
    if value is None:
        return routes.pop(key, None) is not None
    changed = routes.get(key) != value
    routes[key] = value
    return changed


class MemoryWorkload:
    def __init__(self, cluster: MemoryCluster, rendered: RenderedSet, faults: Faults) -> None:
        self.cluster = cluster
        self._rendered = rendered
        self.faults = faults

    @property
    def rendered(self) -> RenderedSet:
        return self._rendered

    @property
    def router(self) -> MemoryRoutes:
        return MemoryRoutes(self)

    def _op(self, change: Callable[[MemoryCluster], bool], operation: str = "route") -> bool:
        self.faults.before(self.cluster, operation)
        changed = change(self.cluster)
        self.cluster.writes += int(changed)
        self.faults.after()
        return changed

    def needs_canary(self) -> bool:
        self.cluster.reach()
        return self.cluster.stable is not None and self.cluster.stable != self.rendered.version

    def deploy(self) -> int:
        version = self.rendered.version

        def change(c: MemoryCluster) -> bool:
            before = (c.stable, c.weight, c.canary_replicas, c.canary_subset, dict(c.routes))
            c.stable, c.weight, c.canary_replicas, c.canary_subset, c.routes = version, 0, 0, version, {}
            return before != (c.stable, c.weight, c.canary_replicas, c.canary_subset, c.routes)

        return int(self._op(change, "deploy"))

    def start_canary(self) -> int:
        version = self.rendered.version

        def change(c: MemoryCluster) -> bool:
            before = (c.canary, c.canary_replicas, c.canary_subset)
            c.canary, c.canary_replicas, c.canary_subset = version, 2, version
            return before != (c.canary, c.canary_replicas, c.canary_subset)

        return int(self._op(change, "start_canary"))

    def set_weight(self, weight: int) -> int:
        def change(c: MemoryCluster) -> bool:
            changed = c.weight != weight
            c.weight = weight
            return changed

        return int(self._op(change, "set_weight"))

    def promote(self, scale_down_delay: float = 0.0) -> int:
        version = self.rendered.version

        def change(c: MemoryCluster) -> bool:
            before = (c.stable, c.weight, c.canary_replicas, c.canary_subset, dict(c.routes))
            c.stable, c.weight, c.canary_replicas, c.canary_subset, c.routes = version, 0, 0, version, {}
            return before != (c.stable, c.weight, c.canary_replicas, c.canary_subset, c.routes)

        return int(self._op(change, "promote"))

    def rollback(self) -> int:
        def change(c: MemoryCluster) -> bool:
            before = (c.weight, c.canary_replicas, c.canary_subset, dict(c.routes))
            c.weight, c.canary_replicas, c.routes = 0, 0, {}
            c.canary_subset = c.stable
            return before != (c.weight, c.canary_replicas, c.canary_subset, c.routes)

        return int(self._op(change, "rollback"))

    def canary_weight(self) -> int:
        self.cluster.reach()
        return self.cluster.weight


def memory_workloads(
    clusters: dict[str, MemoryCluster], faults: Faults
) -> Callable[[ClusterConfig, RenderedSet], Workload]:
    def workload(config: ClusterConfig, rendered: RenderedSet) -> Workload:
        cluster = clusters[config.name]
        cluster.reach()  # connecting proves the cluster answers, as `clusters.connect` does
        return MemoryWorkload(cluster, rendered, faults)

    return workload


class ScriptedGate:
    """An analysis gate whose next verdicts the test sets ("pass", "fail", "inconclusive")."""

    def __init__(self) -> None:
        self.verdicts: list[str] = []
        self.runs = 0

    def source(self) -> str:
        return "a scripted gate"

    def __call__(
        self,
        step: Analyze,
        workloads: list[Any],
        record: Callable[[str, str, dict[str, Any]], None],
        should_stop: Callable[[], bool],
    ) -> GateResult:
        self.runs += 1
        verdict = self.verdicts.pop(0) if self.verdicts else "pass"
        for workload in workloads:
            record(workload.rendered.cluster, f"scripted {verdict}", {"phase": verdict})
        if verdict == "fail":
            return GateResult(False, "error rate 9% > 1%")
        if verdict == "inconclusive":
            return GateResult(False, "too few requests to judge", inconclusive=True)
        return GateResult(True, "analysis passed")

    def factory(self, pipeline: Pipeline, environment: Environment) -> AnalysisGate:
        return self
