"""An environment's policies on when a rollout may start: freeze windows, and whether it waits for approval.

`check_freeze(environment, principal, override, now)` is the one place a freeze window is decided, for
`deploy`, `retry`, an approval that starts a deployment, and (later) `promote` and `rollback`: a window in
force refuses the operation, naming the window (its start and end) and its reason, before anything is
recorded (exit 1: the configuration is valid, the operation may not happen now). An admin may override
it with a reason; the override is then recorded as an `override` event with its actor and reason, beside
`approve --full`'s.

The moment comes from the caller — the rollout engine passes its clock's — so tests move time on a fake
clock and nothing else is faked. A window written without a zone is read as UTC, the zone of every
timestamp in the store.

`approval.required` is not a refusal: the deployment is recorded as AwaitingApproval and an approver
starts it (`rollout/engine.py`, `rollout/control.py`); with `approval.preventSelfApproval` that approver
must be another user than the one who asked for the deployment (`check_not_own`), as GitHub environments'
"prevent self-review" asks.

A deploy of another commit (`deploy --commit`) renders that commit's environment, but the rules of when a
rollout may start are today's as well (`under_todays_rules`): a freeze window or an approval added since
that commit must hold back a deploy of it, as today's `deployers` list does (`identity/rules.py`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from orchestrator.config import Environment
from orchestrator.config.environment import ApprovalPolicy, FreezeWindow
from orchestrator.errors import ConfigError, OrchestratorError
from orchestrator.identity.principal import Principal
from orchestrator.identity.rules import Action, PermissionDeniedError, require


class FrozenError(OrchestratorError):
    """A freeze window of the environment is in force (exit 1); nothing was recorded or applied."""


@dataclass(frozen=True)
class FreezeOverride:
    """What an admin's `--override-freeze --reason TEXT` overrode, to be recorded as an `override` event."""

    environment: str
    windows: tuple[FreezeWindow, ...]
    actor: str
    reason: str

    @property
    def message(self) -> str:
        spans = "; ".join(describe(window) for window in self.windows)
        return f"freeze window overridden by {self.actor} in {self.environment} ({spans}): {self.reason}"

    def to_data(self) -> dict[str, Any]:
        return {
            "override": "freeze_window",
            "reason": self.reason,
            "windows": [
                {"start": _aware(w.start).isoformat(), "end": _aware(w.end).isoformat(), "reason": w.reason}
                for w in self.windows
            ],
        }


def under_todays_rules(at_commit: Environment, today: Environment) -> Environment:
    """The commit's environment (its clusters, waves and values: what is rendered and rolled out) under the
    stricter of its rules and today's: every freeze window of either, and an approval when either requires
    one, by today's approvers (whom `approve` asks in any case)."""
    windows = [
        *at_commit.freeze_windows,
        *(w for w in today.freeze_windows if w not in at_commit.freeze_windows),
    ]
    required = at_commit.approval.required or today.approval.required
    return at_commit.model_copy(
        update={
            "freeze_windows": windows,
            "approval": ApprovalPolicy(
                required=required,
                approvers=today.approval.approvers,
                prevent_self_approval=at_commit.approval.prevent_self_approval
                or today.approval.prevent_self_approval,
            ),
        }
    )


def check_not_own(
    environment: Environment, deployed_by: uuid.UUID | None, principal: Principal | None
) -> None:
    """With `approval.preventSelfApproval`, PermissionDeniedError when `principal` is the user who asked for
    the deployment (`deployed_by`), or cannot be told apart from them: the local login of a store without
    users speaks for whoever runs the command, so it cannot approve there at all (fail closed)."""
    if not environment.approval.prevent_self_approval:
        return
    rule = f"{environment.name}'s approval.preventSelfApproval"
    if principal is None or principal.user_id is None:
        raise PermissionDeniedError(
            f"{rule}: approving needs a user's token, so that the approver can be told from whoever deployed"
        )
    if deployed_by is not None and principal.user_id == deployed_by:
        raise PermissionDeniedError(
            f"{principal.email} asked for this deployment and may not approve it ({rule}): "
            "another approver must"
        )


def in_force(environment: Environment, now: datetime) -> list[FreezeWindow]:
    """The environment's freeze windows that hold `now` (start inclusive, end exclusive)."""
    moment = _aware(now)
    return [w for w in environment.freeze_windows if _aware(w.start) <= moment < _aware(w.end)]


def check_freeze(
    environment: Environment,
    principal: Principal | None,
    override: str | None,
    now: datetime,
    *,
    operation: str = "deploy",
    actor: str | None = None,
    covered: Iterable[tuple[datetime, datetime]] = (),
) -> FreezeOverride | None:
    """None when no freeze window holds `now`; the override to record when an admin gave one with a reason;
    else FrozenError naming each window in force and its reason.

    `override` is the reason given with `--override-freeze` (None: no override asked for); `actor` is the
    name the audit trail records for the principal (default: its own). `covered` are (start, end) of
    windows an override recorded earlier for the same deployment already answered for (its approval then
    needs no second one). Asking for one is
    an admin's right whether or not a window is in force (the refusal names the rule); an override with no
    window to override is refused as bad usage (exit 2) rather than recorded as if it had done something.
    """
    if override is not None:
        if not override.strip():
            raise ConfigError("--reason: an override of a freeze window needs a reason (it is recorded)")
        admin = require(principal, Action.OVERRIDE_FREEZE, environment)
    answered = {(_aware(start), _aware(end)) for start, end in covered}
    windows = [w for w in in_force(environment, now) if (_aware(w.start), _aware(w.end)) not in answered]
    if not windows:
        if override is not None:
            raise ConfigError(
                f"--override-freeze: no freeze window of {environment.name} is in force now "
                f"({_aware(now).isoformat()}); there is nothing to override"
            )
        return None
    if override is None:
        spans = "; ".join(describe(window) for window in windows)
        raise FrozenError(
            f"environments/{environment.name}.yaml: {operation} to {environment.name} refused, nothing was "
            f"recorded or applied: freeze window {spans} is in force; an admin may override it with "
            "`--override-freeze --reason TEXT`"
        )
    return FreezeOverride(environment.name, tuple(windows), actor or admin.audit_name(), override.strip())


def overridden_windows(events: Iterable[Any]) -> list[tuple[datetime, datetime]]:
    """(start, end) of every freeze window a deployment's recorded `override` events overrode."""
    found: list[tuple[datetime, datetime]] = []
    for event in events:
        data = getattr(event, "data", None) or {}
        if getattr(event, "type", None) != "override" or data.get("override") != "freeze_window":
            continue
        for window in data.get("windows") or []:
            found.append((datetime.fromisoformat(window["start"]), datetime.fromisoformat(window["end"])))
    return found


def describe(window: FreezeWindow) -> str:
    """`from 2026-12-24T00:00:00+00:00 to 2026-12-27T00:00:00+00:00 (holidays)`: the window as people read
    it."""
    why = f" ({window.reason})" if window.reason else ""
    return f"from {_aware(window.start).isoformat()} to {_aware(window.end).isoformat()}{why}"


def _aware(moment: datetime) -> datetime:
    # A window written without a zone is read as UTC, the zone every timestamp of the store is in.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
