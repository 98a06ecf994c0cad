"""What a phase change means: the Argo CD Notifications trigger it fires, and the GitHub statuses it sends.

Read from a `phase` event's data (`from`, `to`, `event`; `repository.set_phase` records them). A move that
stays in its phase (a resume taking a rollout over, a retry of a failed rollback) fires nothing.
"""

from __future__ import annotations

from typing import Any

from orchestrator.store.models import Phase

PHASE_EVENT = "phase"  # the type `repository.set_phase` gives the event it records

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
    if after == Phase.AWAITING_APPROVAL.value:
        return "on-awaiting-approval"
    return _ENDINGS.get(str(after))


def github_states(data: dict[str, Any]) -> list[str]:
    """The GitHub deployment statuses a phase change sends, in order (the deployment is created first)."""
    before, after = data.get("from"), data.get("to")
    if before == after:
        return []
    if after == Phase.AWAITING_APPROVAL.value:
        return ["queued"]
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
