"""`/api/v1` for identity: users (admins), access requests (anyone asks; admins review), and API tokens
(yours; admins: anyone's). The same rules as the `users`, `access` and `tokens` commands, from the same
modules (`identity/rules.py`, `identity/accounts.py`, `store/identity.py`).

Asking for access is the one route without a token: whoever asks has none yet. There is no bootstrap over
the network: the first admin is made on the server's machine (`orchestrator users create … --role admin`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import structlog
from fastapi import APIRouter, Path, Query, Request

from orchestrator.identity import tokens
from orchestrator.identity.accounts import refuse_losing_the_last_admin, token_owner
from orchestrator.identity.rules import Action, require
from orchestrator.identity.views import access_request_view, token_view, user_view
from orchestrator.server.api import schemas
from orchestrator.server.api.auth import Caller
from orchestrator.store import identity as store
from orchestrator.store.models import Role, utcnow

log = structlog.get_logger(__name__)

router = APIRouter()

Email = Annotated[str, Path(min_length=3, max_length=255)]
Ref = Annotated[str, Path(min_length=4, max_length=36, pattern=r"^[0-9a-zA-Z_-]+$")]


def _sessions(request: Request) -> Any:
    return request.app.state.sessions


# --- users ------------------------------------------------------------------------------------------------


@router.get("/users", response_model=list[schemas.User], tags=["users"])
def list_users(request: Request, caller: Caller) -> list[dict[str, Any]]:
    """Every user with role and status (admins)."""
    require(caller, Action.MANAGE_USERS)
    with _sessions(request)() as session:
        return [user_view(u) for u in store.list_users(session)]


@router.post("/users", status_code=201, response_model=schemas.User, tags=["users"])
def create_user(request: Request, caller: Caller, body: schemas.CreateUserBody) -> dict[str, Any]:
    """Create the user, active, with the role (admins); they sign in with a token an admin makes them."""
    from orchestrator.identity import passwords

    require(caller, Action.MANAGE_USERS)
    with _sessions(request).begin() as session:
        user = store.create_user(session, body.email, body.role, password_hash=passwords.NO_PASSWORD)
        view = user_view(user)
    log.info("user created", email=view["email"], role=body.role, by=caller.email)
    return view


@router.patch("/users/{email}", response_model=schemas.User, tags=["users"])
def change_user(
    request: Request, caller: Caller, email: Email, body: schemas.ChangeUserBody
) -> dict[str, Any]:
    """Change the user's role and/or status (admins); the last active admin stays an active admin."""
    require(caller, Action.MANAGE_USERS)
    with _sessions(request).begin() as session:
        user = store.get_user(session, email)
        if body.role is not None and body.role != Role.ADMIN.value:
            refuse_losing_the_last_admin(session, user, f"making them {body.role}")
        if body.status == store.DISABLED:
            refuse_losing_the_last_admin(session, user, "disabling them")
        if body.role is not None:
            store.set_role(session, user, body.role)
        if body.status is not None:
            store.set_status(session, user, body.status)
        view = user_view(user)
    log.info("user changed", email=view["email"], role=view["role"], status=view["status"], by=caller.email)
    return view


# --- access requests --------------------------------------------------------------------------------------


@router.post("/access-requests", status_code=201, response_model=schemas.AccessRequest, tags=["access"])
def request_access(request: Request, body: schemas.AccessRequestBody) -> dict[str, Any]:
    """Ask for an account (no token needed); an admin approves it with a role."""
    with _sessions(request).begin() as session:
        created = store.create_access_request(
            session,
            email=body.email,
            full_name=body.full_name,
            organization=body.organization,
            reason=body.reason,
        )
        view = access_request_view(created)
    log.info("access requested", email=view["email"], request=view["id"])
    return view


@router.get("/access-requests", response_model=list[schemas.AccessRequest], tags=["access"])
def list_access_requests(
    request: Request,
    caller: Caller,
    status: Annotated[Literal["pending", "approved", "denied"] | None, Query()] = None,
) -> list[dict[str, Any]]:
    """The access requests, oldest first (admins)."""
    require(caller, Action.REVIEW_ACCESS)
    with _sessions(request)() as session:
        return [access_request_view(r) for r in store.list_access_requests(session, status)]


def _review(
    request: Request, caller: Any, ref: str, *, approve: bool, role: str | None, note: str | None
) -> dict[str, Any]:
    require(caller, Action.REVIEW_ACCESS)
    with _sessions(request).begin() as session:
        found = store.get_access_request(session, ref, lock=True)
        store.review_access_request(
            session, found, approve=approve, role=role, reviewer_id=caller.user_id, note=note
        )
        view = access_request_view(found)
    log.info("access request reviewed", email=view["email"], status=view["status"], by=caller.email)
    return view


@router.post("/access-requests/{ref}/approve", response_model=schemas.AccessRequest, tags=["access"])
def approve_access(
    request: Request, caller: Caller, ref: Ref, body: schemas.ApproveAccessBody
) -> dict[str, Any]:
    """Approve the request: its user is created, active, with the role (admins)."""
    return _review(request, caller, ref, approve=True, role=body.role, note=None)


@router.post("/access-requests/{ref}/deny", response_model=schemas.AccessRequest, tags=["access"])
def deny_access(
    request: Request, caller: Caller, ref: Ref, body: schemas.DenyAccessBody | None = None
) -> dict[str, Any]:
    """Deny the request, with a reason kept beside it (admins)."""
    return _review(request, caller, ref, approve=False, role=None, note=body.reason if body else None)


# --- tokens -----------------------------------------------------------------------------------------------


@router.get("/tokens", response_model=list[schemas.Token], tags=["tokens"])
def list_tokens(
    request: Request,
    caller: Caller,
    user: Annotated[str | None, Query(min_length=3, max_length=255)] = None,
    everyone: Annotated[bool, Query(alias="all")] = False,
) -> list[dict[str, Any]]:
    """Tokens (never the token itself): yours, a user's (admins), or everyone's (`all`, admins)."""
    now = utcnow()
    with _sessions(request)() as session:
        if everyone:
            require(caller, Action.MANAGE_TOKENS)
            rows = store.list_tokens(session)
        else:
            rows = store.list_tokens(session, token_owner(session, caller, user))
        return [token_view(t, now) for t in rows]


@router.post("/tokens", status_code=201, response_model=schemas.NewToken, tags=["tokens"])
def create_token(request: Request, caller: Caller, body: schemas.CreateTokenBody) -> dict[str, Any]:
    """Make a token (for you; admins: for anyone) and return it once."""
    from orchestrator.errors import ConfigError

    now = utcnow()
    expires_at = tokens.parse_expiry(body.expires, now)
    new = tokens.generate()
    with _sessions(request).begin() as session:
        owner = token_owner(session, caller, body.user)
        if owner.status != store.ACTIVE:
            raise ConfigError(f"{owner.email} is {owner.status}; a token for them would not work", key="user")
        row = store.add_token(
            session,
            owner,
            name=body.name,
            token_hash=new.token_hash,
            prefix=new.prefix,
            expires_at=expires_at,
            now=now,
        )
        view = token_view(row, now)
    log.info("api token created", user=view["user"], prefix=new.prefix, name=body.name, by=caller.email)
    return {**view, "secret": new.secret}


@router.delete("/tokens/{ref}", response_model=schemas.Token, tags=["tokens"])
def revoke_token(request: Request, caller: Caller, ref: Ref) -> dict[str, Any]:
    """Revoke a token (yours; admins: anyone's), named by its prefix or id."""
    now = utcnow()
    with _sessions(request).begin() as session:
        token = store.get_token(session, ref)
        if token.user_id != caller.user_id:
            require(caller, Action.MANAGE_TOKENS)
        store.revoke_token(session, token, now=now)
        view = token_view(token, now)
    log.info("api token revoked", user=view["user"], prefix=token.prefix, by=caller.email)
    return view
