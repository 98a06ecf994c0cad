"""How healthy a status cell is, for its colour (always shown with a word too: colour is never the only
sign). The phase decides first; a settled deployment whose clusters disagree with the record or drifted
from the commit is `warning`."""

from __future__ import annotations

from typing import Any

from orchestrator.store.models import Phase

HEALTHY, ACTIVE, WARNING, FAILING = "healthy", "active", "warning", "failing"
HEALTHS = (HEALTHY, ACTIVE, WARNING, FAILING)

_BY_PHASE = {
    Phase.SUCCEEDED.value: HEALTHY,
    Phase.PENDING.value: ACTIVE,
    Phase.PROGRESSING.value: ACTIVE,
    Phase.PAUSED.value: WARNING,
    Phase.AWAITING_APPROVAL.value: WARNING,
    Phase.AWAITING_MERGE.value: WARNING,
    Phase.ROLLED_BACK.value: FAILING,
    Phase.ABORTED.value: FAILING,
    Phase.FAILED.value: FAILING,
}


def phase_health(phase: str) -> str:
    return _BY_PHASE.get(phase, WARNING)


def cell_health(view: dict[str, Any]) -> str:
    health = phase_health(view["phase"])
    if health == HEALTHY:
        drift = (view.get("drift") or {}).get("state")
        if view.get("disagreements") or drift not in (None, "in sync", "not committed"):
            return WARNING
    return health
