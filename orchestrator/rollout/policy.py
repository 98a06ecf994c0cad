"""Environment policies the orchestrator does not enforce yet, refused instead of silently ignored.

`approval.required` and `freezeWindows` in an environment file are accepted by the configuration, but
waiting for an approval before a deploy and freeze windows are built by the promotion work (`deployers` and
`approval.approvers` are checked by `identity/rules.py`). Until then a deploy they would hold back stops
before anything is recorded or any cluster touched: a setting that is accepted and does nothing would let a
production deploy through that its owners meant to stop. Exit 1: the configuration is
valid; it is the operation that cannot be done safely yet.
"""

from __future__ import annotations

from datetime import UTC, datetime

from orchestrator.config import Environment
from orchestrator.errors import OrchestratorError


class PolicyNotBuiltError(OrchestratorError):
    """The environment asks for a check this version of the orchestrator cannot make yet."""


def refuse_unenforced_policies(environment: Environment, *, now: datetime | None = None) -> None:
    moment = now or datetime.now(UTC)
    name = f"environments/{environment.name}.yaml"
    held: list[str] = []
    if environment.approval.required:
        held.append("approval.required is true, and approvals are not built yet")
    for window in environment.freeze_windows:
        start, end = (_aware(window.start), _aware(window.end))
        if start <= moment < end:
            why = f" ({window.reason})" if window.reason else ""
            held.append(
                f"a freeze window is in force until {end.isoformat()}{why}, "
                "and freeze windows are not built yet"
            )
    if held:
        raise PolicyNotBuiltError(
            f"{name}: deploy to {environment.name} refused, nothing was recorded or applied: "
            + "; ".join(held)
        )


def _aware(moment: datetime) -> datetime:
    # A window written without a zone is read as UTC, the zone every timestamp of the store is in.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
