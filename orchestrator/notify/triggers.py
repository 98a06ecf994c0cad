"""What a phase change means: the Argo CD Notifications trigger it fires, and the GitHub statuses it sends.

Read from a `phase` event's data (`from`, `to`, `event`; `repository.set_phase` records them). A move that
stays in its phase (a resume taking a rollout over, a retry of a failed rollback) fires nothing. Waiting for
a pull request's merge (pull-request mode) is announced as `on-awaiting-approval`, and its merge, like a
pause ending, starts nothing new.
"""

from __future__ import annotations

from typing import Any

from orchestrator.store.models import Phase

PHASE_EVENT = "phase"  # the type `repository.set_phase` gives the event it records
ON_DRIFT = "on-drift"  # fired by a `drift` event (rollout/drift_alerts.py), not by a phase change

_ENDINGS = {
    Phase.SUCCEEDED.value: "on-succeeded",
    Phase.ROLLED_BACK.value: "on-rolled-back",
    Phase.ABORTED.value: "on-rolled-back",  # an abort rolls every touched cluster back
    Phase.FAILED.value: "on-failed",
}
_STARTS_FROM = {Phase.PENDING.value, Phase.AWAITING_APPROVAL.value}


def trigger_of(data: dict[str, Any]) -> str | None:
    """The trigger a phase change fires, or None."""
    before, after = data.get("from"), data.get("to")
    if before == after:
        return None
    if after == Phase.PROGRESSING.value:
        return "on-started" if before in _STARTS_FROM else None
    if after in (Phase.AWAITING_APPROVAL.value, Phase.AWAITING_MERGE.value):
        return "on-awaiting-approval"  # a pull request to merge is pull-request mode's approval
    return _ENDINGS.get(str(after))


def github_states(data: dict[str, Any]) -> list[str]:
    """The GitHub deployment statuses a phase change sends, in order (the deployment is created first)."""
    before, after = data.get("from"), data.get("to")
    if before == after:
        return []
    if after == Phase.AWAITING_APPROVAL.value:
        return ["queued"]
    if after == Phase.AWAITING_MERGE.value:
        return []  # GitHub has no waiting state after in_progress: it stays in_progress until the end
    if after == Phase.PROGRESSING.value:
        if before == Phase.PENDING.value:
            return ["queued", "in_progress"]
        if before == Phase.AWAITING_APPROVAL.value:
            return ["in_progress"]
        return []  # a pause ending: GitHub has no paused state, it stayed in_progress
    if after == Phase.SUCCEEDED.value:
        return ["success"]
    if after in (Phase.ROLLED_BACK.value, Phase.ABORTED.value, Phase.FAILED.value):
        return ["failure"]
    return []
