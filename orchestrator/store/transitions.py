"""The deployment state machine as data: phase x event → next phase, and the action the move implies.

Everything that changes a deployment's phase names the event that moves it (`repository.set_phase`), and
the store refuses a move that is not in `TABLE`, naming both phases. The engine, the control commands
(approve, pause, resume, abort, retry) and later the workers all go through this one table, so the rules a
production rollout follows are written down once and tested row by row (tests/unit/test_transitions.py).

Events are facts, not wishes: `ROLLED_BACK` is recorded once every touched cluster is back on stable, and
`ROLLBACK_FAILED` once a rollback could not finish (each cluster's weights read back are recorded with it).
A later `ABORT` (or `RETRY`) of a Failed deployment finishes the rollback.

The table lives in the store, not in `rollout/`, because the store enforces it and lower layers never import
upper ones; it imports nothing but the phases.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from orchestrator.errors import OrchestratorError
from orchestrator.store.models import Phase


class Event(enum.StrEnum):
    START = "start"  # an engine starts driving a Pending deployment
    AWAIT_APPROVAL = "await_approval"  # the environment requires an approval: recorded, nothing touched
    RESUME = "resume"  # `resume`: a manual pause ends, or a crashed driver's rollout is taken over
    PAUSE = "pause"  # `pause`: a manual pause after the current step
    STEP_PAUSE = "step_pause"  # the rollout reached a pause step without a duration
    INCONCLUSIVE = "inconclusive"  # an analysis step could not decide: a person must
    APPROVE = "approve"  # `approve`: the current pause (timed, indefinite, inconclusive) ends
    APPROVE_FULL = "approve_full"  # `approve --full`: every remaining step is skipped, analyses included
    COMPLETED = "completed"  # every step done, every cluster on the new release
    ROLLED_BACK = "rolled_back"  # a failure, and every touched cluster is back on stable
    ROLLBACK_FAILED = "rollback_failed"  # a rollback could not finish; the clusters' weights are recorded
    PROMOTION_FAILED = "promotion_failed"  # the final promotion failed part-way: clusters may differ
    ABORT = "abort"  # `abort`: stop now and put every touched cluster back on stable
    RETRY = "retry"  # `retry`: roll the same request out again as a new deployment
    GITOPS_FAILED = "gitops_failed"  # the desired state could not be committed or pushed: nothing applied
    HOOK_FAILED = "hook_failed"  # a pre-rollout hook said no: nothing committed or applied
    AWAIT_MERGE = "await_merge"  # pull-request mode: the desired state is a pull request, not yet merged
    MERGED = "merged"  # its pull request was merged: roll out what the merge commit holds
    PR_CLOSED = "pr_closed"  # its pull request was closed without a merge: nothing was or will be applied


class Action(enum.StrEnum):
    DRIVE = "drive"  # run the steps from `current_step`
    HOLD = "hold"  # stop driving; wait for a person
    END_PAUSE = "end_pause"  # the pause (or inconclusive analysis) at the current step is over
    SKIP_REMAINING = "skip_remaining"  # every remaining step except promotion is skipped
    ROLL_BACK = "roll_back"  # every touched cluster back on stable, canary at 0
    RECORD_WEIGHTS = "record_weights"  # read back and record what each cluster serves
    REDEPLOY = "redeploy"  # a new deployment of the same request
    FINISH = "finish"  # nothing more to do


@dataclass(frozen=True)
class Transition:
    to: Phase
    action: Action


P, E, A = Phase, Event, Action

TABLE: dict[tuple[Phase, Event], Transition] = {
    (P.PENDING, E.START): Transition(P.PROGRESSING, A.DRIVE),
    (P.PENDING, E.RESUME): Transition(P.PROGRESSING, A.DRIVE),
    (P.PENDING, E.ABORT): Transition(P.ABORTED, A.ROLL_BACK),
    (P.PENDING, E.ROLLED_BACK): Transition(P.ROLLED_BACK, A.FINISH),
    (P.PENDING, E.ROLLBACK_FAILED): Transition(P.FAILED, A.RECORD_WEIGHTS),
    (P.PENDING, E.AWAIT_APPROVAL): Transition(P.AWAITING_APPROVAL, A.HOLD),
    (P.AWAITING_APPROVAL, E.APPROVE): Transition(P.PROGRESSING, A.DRIVE),
    (P.AWAITING_APPROVAL, E.ABORT): Transition(P.ABORTED, A.FINISH),  # nothing was touched
    (P.PROGRESSING, E.GITOPS_FAILED): Transition(P.FAILED, A.FINISH),  # before any cluster is touched
    (P.PROGRESSING, E.HOOK_FAILED): Transition(P.FAILED, A.FINISH),  # before anything is committed
    (P.PROGRESSING, E.AWAIT_MERGE): Transition(P.AWAITING_MERGE, A.HOLD),  # before any cluster is touched
    (P.AWAITING_MERGE, E.MERGED): Transition(P.PROGRESSING, A.DRIVE),
    (P.AWAITING_MERGE, E.PR_CLOSED): Transition(P.ABORTED, A.FINISH),  # nothing was touched
    (P.AWAITING_MERGE, E.ABORT): Transition(P.ABORTED, A.FINISH),  # nothing was touched
    (P.PROGRESSING, E.RESUME): Transition(P.PROGRESSING, A.DRIVE),
    (P.PROGRESSING, E.PAUSE): Transition(P.PAUSED, A.HOLD),
    (P.PROGRESSING, E.STEP_PAUSE): Transition(P.PAUSED, A.HOLD),
    (P.PROGRESSING, E.INCONCLUSIVE): Transition(P.PAUSED, A.HOLD),
    (P.PROGRESSING, E.APPROVE): Transition(P.PROGRESSING, A.END_PAUSE),
    (P.PROGRESSING, E.APPROVE_FULL): Transition(P.PROGRESSING, A.SKIP_REMAINING),
    (P.PROGRESSING, E.COMPLETED): Transition(P.SUCCEEDED, A.FINISH),
    (P.PROGRESSING, E.ROLLED_BACK): Transition(P.ROLLED_BACK, A.FINISH),
    (P.PROGRESSING, E.ROLLBACK_FAILED): Transition(P.FAILED, A.RECORD_WEIGHTS),
    (P.PROGRESSING, E.PROMOTION_FAILED): Transition(P.FAILED, A.RECORD_WEIGHTS),
    (P.PROGRESSING, E.ABORT): Transition(P.ABORTED, A.ROLL_BACK),
    (P.PAUSED, E.PAUSE): Transition(P.PAUSED, A.HOLD),
    (P.PAUSED, E.RESUME): Transition(P.PROGRESSING, A.DRIVE),
    (P.PAUSED, E.APPROVE): Transition(P.PROGRESSING, A.END_PAUSE),
    (P.PAUSED, E.APPROVE_FULL): Transition(P.PROGRESSING, A.SKIP_REMAINING),
    (P.PAUSED, E.ROLLED_BACK): Transition(P.ROLLED_BACK, A.FINISH),
    (P.PAUSED, E.ROLLBACK_FAILED): Transition(P.FAILED, A.RECORD_WEIGHTS),
    (P.PAUSED, E.ABORT): Transition(P.ABORTED, A.ROLL_BACK),
    (P.ABORTED, E.ROLLBACK_FAILED): Transition(P.FAILED, A.RECORD_WEIGHTS),
    (P.ABORTED, E.RETRY): Transition(P.ABORTED, A.REDEPLOY),
    (P.ROLLED_BACK, E.RETRY): Transition(P.ROLLED_BACK, A.REDEPLOY),
    (P.FAILED, E.ABORT): Transition(P.ABORTED, A.ROLL_BACK),
    (P.FAILED, E.RETRY): Transition(P.FAILED, A.ROLL_BACK),  # the rollback first; then ROLLED_BACK, REDEPLOY
    (P.FAILED, E.ROLLED_BACK): Transition(P.ROLLED_BACK, A.FINISH),
    (P.FAILED, E.ROLLBACK_FAILED): Transition(P.FAILED, A.RECORD_WEIGHTS),
}


class TransitionError(OrchestratorError):
    """A phase change the state machine does not have."""

    def __init__(self, phase: Phase, event: Event, to: Phase | None = None) -> None:
        allowed = sorted(e.value for (p, e) in TABLE if p is phase)
        if to is not None:
            text = f"a deployment cannot go from {phase.value} to {to.value} on {event.value}"
        else:
            text = f"{event.value} does not apply to a {phase.value} deployment"
        super().__init__(text + (f" (from {phase.value}: {', '.join(allowed)})" if allowed else ""))
        self.phase, self.event, self.to = phase, event, to


def transition(phase: Phase | str, event: Event) -> Transition:
    """The table's row for (phase, event); TransitionError when there is none."""
    found = TABLE.get((Phase(phase), event))
    if found is None:
        raise TransitionError(Phase(phase), event)
    return found


def check(phase: Phase | str, event: Event, to: Phase | str) -> Transition:
    """The row, which must lead to `to`: how the store refuses a move that is not in the table."""
    found = TABLE.get((Phase(phase), event))
    if found is None or found.to is not Phase(to):
        raise TransitionError(Phase(phase), event, Phase(to))
    return found


def allows(phase: Phase | str, event: Event) -> bool:
    return (Phase(phase), event) in TABLE
