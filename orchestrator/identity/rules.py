"""What each role may do, checked in one place before anything is rendered, applied or changed.

- viewers read, and nothing else;
- deploy, promote, rollback, pause, resume, abort and retry: whoever the environment's `deployers` lists,
  by role or by email;
- approving a paused rollout, or a deployment awaiting approval: whoever the environment's
  `approval.approvers` lists, by role or email;
- overriding a freeze window (`--override-freeze`): admins;
- pushing a build (`build --push`): deployers and admins, on no environment: a pushed image changes no
  cluster (deploying it is checked in its environment), so the registries of every environment take it;
- users, access requests, other people's tokens and migrating the database: admins.

A refusal names the user, their role, the action, the environment and who is allowed.
"""

from __future__ import annotations

import enum

from orchestrator.config.environment import Environment
from orchestrator.errors import OrchestratorError
from orchestrator.identity.principal import Principal
from orchestrator.store.models import Role


class Action(enum.StrEnum):
    DEPLOY = "deploy"
    PROMOTE = "promote"
    ROLLBACK = "rollback"
    PAUSE = "pause"
    RESUME = "resume"
    ABORT = "abort"
    RETRY = "retry"
    APPROVE = "approve"
    OVERRIDE_FREEZE = "override a freeze window"
    MANAGE_USERS = "manage users"
    REVIEW_ACCESS = "review access requests"
    MANAGE_TOKENS = "manage other users' tokens"
    PUSH = "push images"
    MIGRATE_DATABASE = "migrate the database"


DEPLOYER_ACTIONS = frozenset(
    {
        Action.DEPLOY,
        Action.PROMOTE,
        Action.ROLLBACK,
        Action.PAUSE,
        Action.RESUME,
        Action.ABORT,
        Action.RETRY,
    }
)
ADMIN_ACTIONS = frozenset(
    {Action.MANAGE_USERS, Action.REVIEW_ACCESS, Action.MANAGE_TOKENS, Action.MIGRATE_DATABASE}
)
# Actions checked against roles alone, not an environment's lists: (who, the roles allowed).
BY_ROLE: dict[Action, tuple[str, list[str]]] = {
    **{action: ("admins only", [Role.ADMIN.value]) for action in ADMIN_ACTIONS},
    Action.PUSH: ("deployers and admins", [Role.ADMIN.value, Role.DEPLOYER.value]),
}


class PermissionDeniedError(OrchestratorError):
    """The acting user may not do this (exit 1); nothing was changed."""


class NotSignedInError(PermissionDeniedError):
    """Users exist and no token was given for a command that changes something."""


def _who_may(action: Action, environment: Environment | None) -> tuple[str, list[str]]:
    """(where the list comes from, the roles and emails on it)."""
    if action in BY_ROLE:
        return BY_ROLE[action]
    if environment is None:
        raise ValueError(f"{action.value} is checked against an environment")
    if action is Action.OVERRIDE_FREEZE:
        return "admins only, whatever the environment's lists say", [Role.ADMIN.value]
    if action is Action.APPROVE:
        return f"{environment.name}'s approval.approvers", environment.approval.approvers
    return f"{environment.name}'s deployers", environment.deployers


def allowed(principal: Principal, action: Action, environment: Environment | None = None) -> bool:
    if principal.role is Role.VIEWER:
        return False  # viewers read, whatever a list says: a viewer named by email is a contradiction
    _, entries = _who_may(action, environment)
    wanted = {entry.strip().lower() for entry in entries}
    return principal.role.value in wanted or principal.email.lower() in wanted


def require(principal: Principal | None, action: Action, environment: Environment | None = None) -> Principal:
    """The principal, if it may do `action` (in `environment`); else PermissionDeniedError saying why."""
    where = f" in {environment.name}" if environment is not None and action not in BY_ROLE else ""
    if principal is None:
        raise NotSignedInError(
            f"{action.value}{where} needs a token: give --token, set ORCHESTRATOR_TOKEN, "
            "or run `orchestrator login --email EMAIL`"
        )
    if allowed(principal, action, environment):
        return principal
    source, entries = _who_may(action, environment)
    listing = ", ".join(entries) or "nobody"
    reason = " (viewers only read)" if principal.role is Role.VIEWER else ""
    raise PermissionDeniedError(
        f"{principal.email} ({principal.role.value}) may not {action.value}{where}{reason}; "
        f"allowed ({source}): {listing}"
    )
