"""Manual control of a rollout: typed requests, the pause reasons they act on, and what each one does.

Pauses are a set of reasons, each with its start (Argo Rollouts' pause conditions): the rollout reached a
pause step without a duration (`CanaryPauseStep`), a person paused it (`Manual`), or an analysis step could
not decide (`InconclusiveAnalysis`). The deployment is Paused while any reason stands.

- `approve` ends the current pause: every reason is lifted, and when the rollout waits at a pause step
  (timed or not) or an inconclusive analysis, that step is marked approved so the engine goes past it. A
  manual pause during an analysis step is lifted without marking anything: the analysis runs again.
- `approve --full` skips every remaining step but the promotion, analyses included; it is recorded as an
  override with its actor.
- `pause` adds the Manual reason; `resume` lifts it (and refuses while another reason stands: that one
  needs an approval).
- A deployment AwaitingApproval (its environment sets `approval.required`) has touched nothing: `approve`
  starts it (Progressing, from its first step), `abort` makes it Aborted at once. `approve --full` is
  refused there: the approval that lets a rollout start is not also a decision to skip its canary steps
  and analyses; that is asked for once it runs. `pause`, `resume` and `retry` do not apply.

Each request is an event of the state machine (`store/transitions.py`): its row is checked before anything
changes, and the request is appended to the audit trail with its actor.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from orchestrator.errors import OrchestratorError
from orchestrator.rollout.plan import Analyze, Pause, PlannedStep
from orchestrator.store import repository as repo
from orchestrator.store.models import Deployment, Phase
from orchestrator.store.transitions import Event, transition


class PauseReason(enum.StrEnum):
    CANARY_PAUSE_STEP = "CanaryPauseStep"
    MANUAL = "Manual"
    INCONCLUSIVE_ANALYSIS = "InconclusiveAnalysis"


class StopRequest(BaseModel):
    """A rollback the deployment owes: asked for (`abort`) or decided (a failure).

    Written before the first cluster is rolled back, so a driver killed part-way leaves it behind and the
    next driver finishes the rollback instead of rolling out again; cleared when the outcome is recorded.
    """

    model_config = ConfigDict(extra="forbid")

    kind: Literal["abort", "rollback"]
    reason: str
    actor: str | None = None
    step: int | None = None  # the step that failed
    promotion: bool = False  # it failed during the final promotion (some clusters may run the new release)


class PullRequestState(BaseModel):
    """Pull-request mode: the pull request a deployment's desired state waits in (AwaitingMerge), and, once
    merged, the merge commit whose files roll out."""

    model_config = ConfigDict(extra="forbid")

    repository: str  # owner/name on GitHub
    number: int
    url: str
    head: str  # the deployment's own branch
    base: str  # the environment's branch
    head_sha: str  # the commit the orchestrator pushed
    merge_commit: str | None = None
    merged_by: str | None = None

    @property
    def name(self) -> str:
        return f"{self.repository}#{self.number}"


class ControlState(BaseModel):
    """The `control` column: small, read before every step."""

    model_config = ConfigDict(extra="forbid")

    pauses: dict[PauseReason, float] = Field(default_factory=dict)  # reason -> when it started (epoch s)
    approved_step: int | None = None  # the pause (or inconclusive analysis) an approval ended
    full_promotion: bool = False
    stop: StopRequest | None = None
    pull_request: PullRequestState | None = None

    @classmethod
    def of(cls, record: dict[str, Any] | None) -> ControlState:
        return cls.model_validate(record or {})

    def to_record(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def clear_stop(deployment: Deployment) -> None:
    """Forget the deployment's stop request (it was carried out, or declined); the rest of `control` stays."""
    state = ControlState.of(deployment.control)
    state.stop = None
    deployment.control = state.to_record()


@dataclass(frozen=True)
class ControlRequest:
    """approve, approve --full, pause, resume, abort or retry, by someone."""

    event: Event
    actor: str | None = None

    @property
    def name(self) -> str:
        return {Event.APPROVE_FULL: "approve --full"}.get(self.event, self.event.value)


class ControlError(OrchestratorError):
    """A control request that does not apply to the deployment as it stands."""


def refuse(deployment: Deployment, request: ControlRequest, why: str) -> ControlError:
    return ControlError(f"{request.name} of deployment {deployment.id}: {why}")


def check(deployment: Deployment, request: ControlRequest) -> None:
    """The request must be a row of the table for the deployment's phase, and no rollback be owed first."""
    phase = Phase(deployment.phase)
    try:
        transition(phase, request.event)
    except OrchestratorError:
        why = f"it is {phase.value}; {request.name} does not apply"
        if phase is Phase.AWAITING_APPROVAL:
            why += f" until it is approved: `orchestrator approve {str(deployment.id)[:8]}` starts it"
        if phase is Phase.AWAITING_MERGE:
            pull = ControlState.of(deployment.control).pull_request
            where = f"pull request {pull.url}" if pull is not None else "its pull request"
            why += f": it starts when {where} is merged (`orchestrator abort` withdraws it)"
        raise refuse(deployment, request, why) from None
    stop = ControlState.of(deployment.control).stop
    if stop is not None and request.event not in (Event.ABORT, Event.RETRY, Event.RESUME):
        raise refuse(
            deployment, request, f"it is being rolled back ({stop.reason}); `resume` or `abort` finishes that"
        )


def request_abort(session: Session, deployment: Deployment, request: ControlRequest) -> str:
    """Record that the deployment is to be rolled back; the phase moves once the rollback is done."""
    check(deployment, request)
    control = ControlState.of(deployment.control)
    if control.stop is None or control.stop.kind != "abort":
        control.stop = StopRequest(
            kind="abort", reason=f"aborted by {request.actor or 'unknown'}", actor=request.actor
        )
    deployment.control = control.to_record()
    message = f"abort requested by {request.actor or 'unknown'} at step {deployment.current_step}"
    repo.append_event(
        session,
        deployment,
        "control",
        message,
        step=deployment.current_step,
        data={"request": request.name, "event": request.event.value},
        actor=request.actor,
    )
    return message


def record(
    session: Session, deployment: Deployment, request: ControlRequest, message: str, **data: Any
) -> None:
    """The request in the audit trail, with its actor; the phase moves when the table says it does."""
    row = transition(deployment.phase, request.event)
    if row.to is not Phase(deployment.phase):
        repo.set_phase(session, deployment, row.to, event=request.event, message=message, actor=request.actor)
    repo.append_event(
        session,
        deployment,
        "control",
        message,
        step=deployment.current_step,
        data={"request": request.name, "event": request.event.value, **data},
        actor=request.actor,
    )


def check_start(deployment: Deployment, request: ControlRequest) -> None:
    """Only a plain `approve` starts a deployment AwaitingApproval."""
    if request.event is Event.APPROVE_FULL:
        raise refuse(
            deployment,
            request,
            "it is AwaitingApproval, and the approval that starts a rollout does not skip its steps; "
            f"`orchestrator approve {str(deployment.id)[:8]}` starts it, and `approve --full` applies once "
            "it runs",
        )
    check(deployment, request)


def approve(
    session: Session, deployment: Deployment, request: ControlRequest, steps: list[PlannedStep]
) -> str:
    if Phase(deployment.phase) is Phase.AWAITING_APPROVAL:
        check_start(deployment, request)
        message = f"approved by {request.actor or 'unknown'}: the rollout starts"
        record(session, deployment, request, message, started=True)
        return message
    check(deployment, request)
    control = ControlState.of(deployment.control)
    index = deployment.current_step
    step = steps[index] if index < len(steps) else None
    if request.event is Event.APPROVE_FULL:
        control.pauses.clear()
        control.full_promotion = True
        deployment.control = control.to_record()
        message = (
            f"approve --full by {request.actor or 'unknown'}: every remaining step skipped, analyses included"
        )
        repo.append_event(
            session,
            deployment,
            "override",
            message,
            step=index,
            data={"override": "full_promotion"},
            actor=request.actor,
        )
        record(session, deployment, request, message)
        return message
    waiting_step = step is not None and (
        isinstance(step.action, Pause)
        or (isinstance(step.action, Analyze) and PauseReason.INCONCLUSIVE_ANALYSIS in control.pauses)
    )
    if Phase(deployment.phase) is Phase.PROGRESSING and not waiting_step:
        label = step.label if step is not None else "the end"
        raise refuse(
            deployment,
            request,
            f"it is not paused (step {index}: {label}); `approve --full` skips every remaining step",
        )
    lifted = sorted(control.pauses)
    control.pauses.clear()
    if waiting_step:
        control.approved_step = index
    deployment.control = control.to_record()
    what = (
        f"the pause at step {index} ended" if waiting_step else "the manual pause ended; the step runs again"
    )
    message = f"approved by {request.actor or 'unknown'}: {what}"
    record(
        session,
        deployment,
        request,
        message,
        lifted=[str(r) for r in lifted],
        approved_step=control.approved_step,
    )
    return message


def pause(session: Session, deployment: Deployment, request: ControlRequest, *, now: float) -> str:
    check(deployment, request)
    control = ControlState.of(deployment.control)
    control.pauses.setdefault(PauseReason.MANUAL, now)
    deployment.control = control.to_record()
    message = f"paused by {request.actor or 'unknown'} after step {deployment.current_step}"
    record(session, deployment, request, message)
    return message


def resume(session: Session, deployment: Deployment, request: ControlRequest) -> str:
    check(deployment, request)
    control = ControlState.of(deployment.control)
    others = sorted(str(r) for r in control.pauses if r is not PauseReason.MANUAL)
    if Phase(deployment.phase) is Phase.PAUSED and others:
        raise refuse(
            deployment,
            request,
            f"it waits for an approval at step {deployment.current_step} ({', '.join(others)}); "
            "use `approve`",
        )
    control.pauses.pop(PauseReason.MANUAL, None)
    deployment.control = control.to_record()
    message = f"resumed by {request.actor or 'unknown'} at step {deployment.current_step}"
    record(session, deployment, request, message)
    return message


def pause_for(
    session: Session, deployment: Deployment, reason: PauseReason, step: PlannedStep, *, now: float, why: str
) -> None:
    """The engine pausing itself: at a pause step without a duration, or an inconclusive analysis."""
    control = ControlState.of(deployment.control)
    control.pauses.setdefault(reason, now)
    deployment.control = control.to_record()
    event = Event.STEP_PAUSE if reason is PauseReason.CANARY_PAUSE_STEP else Event.INCONCLUSIVE
    repo.set_phase(
        session,
        deployment,
        Phase.PAUSED,
        event=event,
        message=why,
        step=step.index,
        data={"reason": reason.value},
    )
