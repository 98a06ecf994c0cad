"""Rules about accounts that the CLI and the REST API share: whose tokens a principal handles, and the
last admin, who can be neither demoted nor disabled."""

from __future__ import annotations

from sqlalchemy.orm import Session

from orchestrator.errors import ConfigError, OrchestratorError
from orchestrator.identity.principal import Principal
from orchestrator.identity.rules import Action, require
from orchestrator.store import identity as store
from orchestrator.store.models import Role, User


def token_owner(session: Session, principal: Principal, email: str | None) -> User:
    """Whose tokens: the principal's own (no email, or their own), or — admins only — the user named."""
    if email is None or (principal.user_id is not None and store.normalize_email(email) == principal.email):
        if principal.user_id is None:
            raise ConfigError(
                "the local login has no user of its own; name one with --user EMAIL", key="--user"
            )
        user = session.get(User, principal.user_id)
        assert user is not None
        return user
    require(principal, Action.MANAGE_TOKENS)
    return store.get_user(session, email)


def refuse_losing_the_last_admin(session: Session, user: User, what: str) -> None:
    """Nobody could manage users again if the last active admin were demoted or disabled."""
    if user.role != Role.ADMIN.value or user.status != store.ACTIVE:
        return
    admins = [u for u in store.list_users(session) if u.role == Role.ADMIN.value and u.status == store.ACTIVE]
    if len(admins) <= 1:
        raise OrchestratorError(f"{user.email} is the last active admin; {what} would leave no admin")
