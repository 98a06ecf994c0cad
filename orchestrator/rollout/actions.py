"""One handler per kind of step: which clusters it acts on, what it does there, what its completion records.

`HANDLERS` maps each action type of `plan.py` to its handler; the engine looks a step's handler up once and
never asks what kind of step it runs. A handler returns `Completed` (the engine records the completion and
the clusters' new weights in one transaction) or `Stopped` (paused, or interrupted by a control request:
nothing is recorded, and the step runs again when the rollout goes on).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from orchestrator.rollout.control import PauseReason
from orchestrator.rollout.gates import GateResult
from orchestrator.rollout.plan import (
    Action,
    Analyze,
    Deploy,
    Pause,
    PlannedStep,
    Promote,
    SetHeaderRoute,
    SetMirror,
    SetWeight,
    StartCanary,
)
from orchestrator.rollout.workloads import Workload
from orchestrator.store.models import Phase
from orchestrator.traffic.base import HeaderMatch


class StepFailedError(Exception):
    """A step's action failed in a cluster (the message names it); the engine rolls back."""

    def __init__(self, message: str, cluster: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.cluster = cluster

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class ClusterRecord:
    """Clusters whose weights and phase a step's completion sets."""

    names: tuple[str, ...]
    canary_weight: int
    phase: Phase
    message: str | None = None


@dataclass(frozen=True)
class Completed:
    writes: dict[str, int] = field(default_factory=dict)
    message: str | None = None
    records: tuple[ClusterRecord, ...] = ()
    finished: frozenset[str] = frozenset()  # clusters done with this deployment (later steps skip them)
    weights: dict[str, int] | None = None  # for the progress report
    skipped: bool = False  # not run: `approve --full` skipped it
    direct: tuple[str, ...] = ()  # clusters deployed directly (nothing to compare a canary with)


@dataclass(frozen=True)
class Stopped:
    """The step did not complete: the rollout paused, was aborted, or a person must decide."""


class Driver(Protocol):
    """What handlers may ask of the engine driving the step."""

    def in_parallel(
        self, targets: list[Workload], operation: Callable[[Workload], int]
    ) -> dict[str, int]: ...

    def approved(self, step: PlannedStep) -> bool:
        """An approval ended this step's pause (or its inconclusive analysis)."""
        ...

    def wait(self, step: PlannedStep, seconds: float) -> bool:
        """Wait out a timed pause from its first start; False when stopped (paused, aborted) meanwhile."""
        ...

    def hold(self, step: PlannedStep, reason: PauseReason, why: str) -> None:
        """Pause the deployment for a person, with the reason."""
        ...

    def gate(self, step: PlannedStep, targets: list[Workload]) -> GateResult | None:
        """Run the step's analysis; None when stopped meanwhile."""
        ...


def _names(targets: list[Workload]) -> tuple[str, ...]:
    return tuple(w.rendered.cluster for w in targets)


class Handler(Protocol):
    # Steps that act on canaries skip clusters already done (deployed directly, or promoted).
    skips_finished: bool

    def run(self, driver: Driver, step: PlannedStep, targets: list[Workload]) -> Completed | Stopped: ...


class DeployHandler:
    """A rolling update of the wave: apply everything, wait, prune."""

    skips_finished = False

    def run(self, driver: Driver, step: PlannedStep, targets: list[Workload]) -> Completed | Stopped:  # noqa: ARG002
        writes = driver.in_parallel(targets, lambda w: w.deploy())
        names = _names(targets)
        return Completed(
            writes, records=(ClusterRecord(names, 0, Phase.SUCCEEDED),), finished=frozenset(names)
        )


class StartCanaryHandler:
    """The canary up at 0 %; a cluster with nothing to compare with (first release, or this version already
    stable) is deployed directly and sits out the wave's steps."""

    skips_finished = False

    def run(self, driver: Driver, step: PlannedStep, targets: list[Workload]) -> Completed | Stopped:  # noqa: ARG002
        direct = [w for w in targets if not w.needs_canary()]
        canaries = [w for w in targets if w not in direct]
        writes = driver.in_parallel(direct, lambda w: w.deploy())
        writes |= driver.in_parallel(canaries, lambda w: w.start_canary())
        records = (
            ClusterRecord(_names(canaries), 0, Phase.PROGRESSING),
            ClusterRecord(
                _names(direct), 0, Phase.SUCCEEDED, "deployed directly: no other version to compare with"
            ),
        )
        return Completed(writes, records=records, finished=frozenset(_names(direct)), direct=_names(direct))


class SetWeightHandler:
    skips_finished = True

    def run(self, driver: Driver, step: PlannedStep, targets: list[Workload]) -> Completed | Stopped:
        assert isinstance(step.action, SetWeight)
        weight = step.action.weight
        writes = driver.in_parallel(targets, lambda w: w.set_weight(weight))
        names = _names(targets)
        return Completed(
            writes,
            records=(ClusterRecord(names, weight, Phase.PROGRESSING),),
            weights={n: weight for n in names},
        )


class PauseHandler:
    skips_finished = True

    def run(self, driver: Driver, step: PlannedStep, targets: list[Workload]) -> Completed | Stopped:  # noqa: ARG002
        assert isinstance(step.action, Pause)
        if driver.approved(step):
            return Completed(message=f"{step.label}: approved")
        duration = step.action.duration
        if duration is None:
            driver.hold(
                step, PauseReason.CANARY_PAUSE_STEP, f"paused at step {step.index}: waiting for approval"
            )
            return Stopped()
        if not driver.wait(step, duration):
            return Stopped()
        return Completed(message=f"{step.label}: approved" if driver.approved(step) else None)


class AnalyzeHandler:
    skips_finished = True

    def run(self, driver: Driver, step: PlannedStep, targets: list[Workload]) -> Completed | Stopped:
        if driver.approved(step):
            return Completed(message=f"{step.label}: inconclusive, approved")
        result = driver.gate(step, targets)
        if result is None:
            return Stopped()
        if result.inconclusive:
            driver.hold(
                step,
                PauseReason.INCONCLUSIVE_ANALYSIS,
                f"analysis at step {step.index} was inconclusive: {result.message}; "
                "approve to go on, abort to roll back",
            )
            return Stopped()
        if not result.passed:
            raise StepFailedError(f"analysis failed at step {step.index}: {result.message}")
        return Completed(message=result.message)


class SetHeaderRouteHandler:
    skips_finished = True

    def run(self, driver: Driver, step: PlannedStep, targets: list[Workload]) -> Completed | Stopped:
        assert isinstance(step.action, SetHeaderRoute)
        name = step.action.name
        matches = [HeaderMatch(header, kind, value) for header, kind, value in step.action.matches]
        return Completed(driver.in_parallel(targets, lambda w: int(w.router.set_header_route(name, matches))))


class SetMirrorHandler:
    skips_finished = True

    def run(self, driver: Driver, step: PlannedStep, targets: list[Workload]) -> Completed | Stopped:
        assert isinstance(step.action, SetMirror)
        name, percentage = step.action.name, step.action.percentage
        return Completed(driver.in_parallel(targets, lambda w: int(w.router.set_mirror(name, percentage))))


class PromoteHandler:
    """The new version becomes stable everywhere; a failure here cannot be undone by traffic alone."""

    skips_finished = True

    def run(self, driver: Driver, step: PlannedStep, targets: list[Workload]) -> Completed | Stopped:
        assert isinstance(step.action, Promote)
        delay = step.action.scale_down_delay
        writes = driver.in_parallel(targets, lambda w: w.promote(delay))
        names = _names(targets)
        return Completed(
            writes, records=(ClusterRecord(names, 0, Phase.SUCCEEDED),), finished=frozenset(names)
        )


HANDLERS: dict[type[Action], Handler] = {
    Deploy: DeployHandler(),
    StartCanary: StartCanaryHandler(),
    SetWeight: SetWeightHandler(),
    Pause: PauseHandler(),
    Analyze: AnalyzeHandler(),
    SetHeaderRoute: SetHeaderRouteHandler(),
    SetMirror: SetMirrorHandler(),
    Promote: PromoteHandler(),
}

# Kept under `approve --full`: the canary must exist before it can be promoted, and promotion ends it.
ESSENTIAL = (StartCanary, Deploy, Promote)


def handler_for(step: PlannedStep) -> Handler:
    return HANDLERS[type(step.action)]
