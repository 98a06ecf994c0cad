"""Managing accounts on behalf of a principal: users, access requests and API tokens, with the rules
checked first. The REST API's identity routes and the dashboard's access page both call these, so a user,
a review or a token is made one way whichever door it came through (the CLI's `tokens` and `users
set-role|disable|enable` call them too; `users create` and `access` keep their bootstrap cases).

Each function opens its own transaction on `sessions` and returns the views (`identity/views.py`) the API
answers with; a refusal raises before anything is written.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from orchestrator.errors import ConfigError
from orchestrator.identity import passwords, tokens
from orchestrator.identity.accounts import refuse_losing_the_last_admin, token_owner
from orchestrator.identity.principal import Principal
from orchestrator.identity.rules import Action, require
from orchestrator.identity.views import access_request_view, token_view, user_view
from orchestrator.logs import get_logger
from orchestrator.store import identity as store
from orchestrator.store.models import Role, utcnow

log = get_logger(__name__)

Sessions = sessionmaker[Session]


# --- users ------------------------------------------------------------------------------------------------


def list_users(sessions: Sessions, principal: Principal) -> list[dict[str, Any]]:
    require(principal, Action.MANAGE_USERS)
    with sessions() as session:
        return [user_view(u) for u in store.list_users(session)]


def create_user(
    sessions: Sessions, principal: Principal, email: str, role: str, *, password: str | None = None
) -> dict[str, Any]:
    """The user, active, with the role, and the password `login` then takes (none: they sign in with a
    token an admin makes them)."""
    require(principal, Action.MANAGE_USERS)
    password_hash = passwords.hash_password(password) if password else passwords.NO_PASSWORD
    with sessions.begin() as session:
        view = user_view(store.create_user(session, email, role, password_hash=password_hash))
    log.info("user created", email=view["email"], role=role, by=principal.email)
    return view


def change_user(
    sessions: Sessions, principal: Principal, email: str, *, role: str | None, status: str | None
) -> dict[str, Any]:
    """A new role and/or status; the last active admin stays an active admin."""
    require(principal, Action.MANAGE_USERS)
    with sessions.begin() as session:
        user = store.get_user(session, email)
        if role is not None and role != Role.ADMIN.value:
            refuse_losing_the_last_admin(session, user, f"making them {role}")
        if status == store.DISABLED:
            refuse_losing_the_last_admin(session, user, "disabling them")
        if role is not None:
            store.set_role(session, user, role)
        if status is not None:
            store.set_status(session, user, status)
        view = user_view(user)
    log.info(
        "user changed", email=view["email"], role=view["role"], status=view["status"], by=principal.email
    )
    return view


# --- access requests --------------------------------------------------------------------------------------


def request_access(
    sessions: Sessions, *, email: str, full_name: str, organization: str | None, reason: str | None
) -> dict[str, Any]:
    """A pending request (no principal: whoever asks has no account yet)."""
    with sessions.begin() as session:
        created = store.create_access_request(
            session, email=email, full_name=full_name, organization=organization, reason=reason
        )
        view = access_request_view(created)
    log.info("access requested", email=view["email"], request=view["id"])
    return view


def list_access_requests(
    sessions: Sessions, principal: Principal, status: str | None
) -> list[dict[str, Any]]:
    require(principal, Action.REVIEW_ACCESS)
    with sessions() as session:
        return [access_request_view(r) for r in store.list_access_requests(session, status)]


def review_access(
    sessions: Sessions, principal: Principal, ref: str, *, approve: bool, role: str | None, note: str | None
) -> dict[str, Any]:
    """Approve (the user is created with `role`) or deny (with `note`) a pending request."""
    require(principal, Action.REVIEW_ACCESS)
    with sessions.begin() as session:
        found = store.get_access_request(session, ref, lock=True)
        store.review_access_request(
            session, found, approve=approve, role=role, reviewer_id=principal.user_id, note=note
        )
        view = access_request_view(found)
    log.info("access request reviewed", email=view["email"], status=view["status"], by=principal.email)
    return view


# --- tokens -----------------------------------------------------------------------------------------------


def list_tokens(
    sessions: Sessions, principal: Principal, *, user: str | None = None, everyone: bool = False
) -> list[dict[str, Any]]:
    """Tokens (never a secret): the principal's, a user's (admins), or everyone's (admins)."""
    now = utcnow()
    with sessions() as session:
        if everyone:
            require(principal, Action.MANAGE_TOKENS)
            rows = store.list_tokens(session)
        else:
            rows = store.list_tokens(session, token_owner(session, principal, user))
        return [token_view(t, now) for t in rows]


def create_token(
    sessions: Sessions,
    principal: Principal,
    *,
    name: str,
    expires: str,
    user: str | None,
    user_key: str = "user",
) -> dict[str, Any]:
    """A new token (the principal's; admins: anyone's); its view with `secret`, shown this once only.
    `user_key` names the field or option `user` came from, in a refusal."""
    now = utcnow()
    expires_at = tokens.parse_expiry(expires, now)
    new = tokens.generate()
    with sessions.begin() as session:
        owner = token_owner(session, principal, user)
        if owner.status != store.ACTIVE:
            raise ConfigError(
                f"{owner.email} is {owner.status}; a token for them would not work", key=user_key
            )
        row = store.add_token(
            session,
            owner,
            name=name,
            token_hash=new.token_hash,
            prefix=new.prefix,
            expires_at=expires_at,
            now=now,
        )
        view = token_view(row, now)
    log.info("api token created", user=view["user"], prefix=new.prefix, name=name, by=principal.email)
    return {**view, "secret": new.secret}


def revoke_token(sessions: Sessions, principal: Principal, ref: str) -> dict[str, Any]:
    """Revoke a token (the principal's own; admins: anyone's), named by its prefix or id; its view with
    `changed`, false when it was revoked already (its first revocation time is kept)."""
    now = utcnow()
    with sessions.begin() as session:
        token = store.get_token(session, ref)
        if token.user_id != principal.user_id:
            require(principal, Action.MANAGE_TOKENS)
        changed = store.revoke_token(session, token, now=now)
        view = token_view(token, now)
    log.info("api token revoked", user=view["user"], prefix=token.prefix, by=principal.email, changed=changed)
    return {**view, "changed": changed}


def login(sessions: Sessions, *, email: str, password: str, expires: str) -> dict[str, Any]:
    """A new `login` token for the user whose password this is (no principal: that is what is asked);
    LoginFailedError otherwise. The secret is in the answer, this once only."""
    from orchestrator.identity.signin import sign_in

    now = utcnow()
    expires_at = tokens.parse_expiry(expires, now)
    with sessions.begin() as session:
        signed_in = sign_in(session, email, password, token_name="login", expires_at=expires_at, now=now)
    log.info("signed in", user=signed_in.email, prefix=signed_in.token.prefix)
    return {
        "email": signed_in.email,
        "role": signed_in.role.value,
        "token": tokens.display(signed_in.token.prefix),
        "secret": signed_in.token.secret,
    }
