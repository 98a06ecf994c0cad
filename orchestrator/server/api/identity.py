"""`/api/v1` for identity: users (admins), access requests (anyone asks; admins review), and API tokens
(yours; admins: anyone's). The same rules as the `users`, `access` and `tokens` commands; the cores are
`identity/manage.py`'s, which the dashboard's access page calls too.

Asking for access is the one route without a token: whoever asks has none yet. There is no bootstrap over
the network: the first admin is made on the server's machine (`orchestrator users create … --role admin`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request

from orchestrator.identity import manage
from orchestrator.identity.views import principal_view
from orchestrator.server.api import schemas
from orchestrator.server.api.auth import Caller
from orchestrator.server.login_limit import LoginLimiter

router = APIRouter()

Email = Annotated[str, Path(min_length=3, max_length=255)]
Ref = Annotated[str, Path(min_length=4, max_length=36, pattern=r"^[0-9a-zA-Z_-]+$")]
# A token is named as `tokens list` shows it (`atc_ab12cd34…`, the ellipsis optional) or by its id.
TokenRef = Annotated[str, Path(min_length=4, max_length=37, pattern=r"^[0-9a-zA-Z_-]+…?$")]


def _sessions(request: Request) -> Any:
    return request.app.state.sessions


# --- users ------------------------------------------------------------------------------------------------


@router.get("/users", response_model=list[schemas.User], tags=["users"])
def list_users(request: Request, caller: Caller) -> list[dict[str, Any]]:
    """Every user with role and status (admins)."""
    return manage.list_users(_sessions(request), caller)


@router.post("/users", status_code=201, response_model=schemas.User, tags=["users"])
def create_user(request: Request, caller: Caller, body: schemas.CreateUserBody) -> dict[str, Any]:
    """Create the user, active, with the role (admins); they sign in with a token an admin makes them, or
    with `orchestrator login` when a password is given."""
    return manage.create_user(_sessions(request), caller, body.email, body.role, password=body.password)


@router.patch("/users/{email}", response_model=schemas.User, tags=["users"])
def change_user(
    request: Request, caller: Caller, email: Email, body: schemas.ChangeUserBody
) -> dict[str, Any]:
    """Change the user's role and/or status (admins); the last active admin stays an active admin."""
    return manage.change_user(_sessions(request), caller, email, role=body.role, status=body.status)


# --- access requests --------------------------------------------------------------------------------------


@router.post("/access-requests", status_code=201, response_model=schemas.AccessRequest, tags=["access"])
def request_access(request: Request, body: schemas.AccessRequestBody) -> dict[str, Any]:
    """Ask for an account (no token needed); an admin approves it with a role."""
    return manage.request_access(
        _sessions(request),
        email=body.email,
        full_name=body.full_name,
        organization=body.organization,
        reason=body.reason,
    )


@router.get("/access-requests", response_model=list[schemas.AccessRequest], tags=["access"])
def list_access_requests(
    request: Request,
    caller: Caller,
    status: Annotated[Literal["pending", "approved", "denied"] | None, Query()] = None,
) -> list[dict[str, Any]]:
    """The access requests, oldest first (admins)."""
    return manage.list_access_requests(_sessions(request), caller, status)


@router.post("/access-requests/{ref}/approve", response_model=schemas.AccessRequest, tags=["access"])
def approve_access(
    request: Request, caller: Caller, ref: Ref, body: schemas.ApproveAccessBody
) -> dict[str, Any]:
    """Approve the request: its user is created, active, with the role (admins)."""
    return manage.review_access(_sessions(request), caller, ref, approve=True, role=body.role, note=None)


@router.post("/access-requests/{ref}/deny", response_model=schemas.AccessRequest, tags=["access"])
def deny_access(
    request: Request, caller: Caller, ref: Ref, body: schemas.DenyAccessBody | None = None
) -> dict[str, Any]:
    """Deny the request, with a reason kept beside it (admins)."""
    note = body.reason if body else None
    return manage.review_access(_sessions(request), caller, ref, approve=False, role=None, note=note)


# --- tokens -----------------------------------------------------------------------------------------------


@router.get("/tokens", response_model=list[schemas.Token], tags=["tokens"])
def list_tokens(
    request: Request,
    caller: Caller,
    user: Annotated[str | None, Query(min_length=3, max_length=255)] = None,
    everyone: Annotated[bool, Query(alias="all")] = False,
) -> list[dict[str, Any]]:
    """Tokens (never the token itself): yours, a user's (admins), or everyone's (`all`, admins)."""
    return manage.list_tokens(_sessions(request), caller, user=user, everyone=everyone)


@router.post("/tokens", status_code=201, response_model=schemas.NewToken, tags=["tokens"])
def create_token(request: Request, caller: Caller, body: schemas.CreateTokenBody) -> dict[str, Any]:
    """Make a token (for you; admins: for anyone) and return it once."""
    return manage.create_token(
        _sessions(request), caller, name=body.name, expires=body.expires, user=body.user
    )


@router.delete("/tokens/{ref}", response_model=schemas.RevokedToken, tags=["tokens"])
def revoke_token(request: Request, caller: Caller, ref: TokenRef) -> dict[str, Any]:
    """Revoke a token (yours; admins: anyone's), named by its prefix or id; `changed` is false when it was
    revoked already."""
    return manage.revoke_token(_sessions(request), caller, ref)


@router.post(
    "/login",
    status_code=201,
    response_model=schemas.SignedIn,
    tags=["tokens"],
    responses={
        429: {
            "model": schemas.Problem,
            "content": {"application/problem+json": {}},
            "description": "too many failed sign-ins for this email or from this address (see Retry-After)",
        }
    },
)
def login(request: Request, body: schemas.LoginBody) -> dict[str, Any]:
    """Exchange a user's password for a new token (no token needed): what `orchestrator login` does, for
    `orchestrator --server URL login`. A wrong email or password is 401, never saying which; past
    `ORCHESTRATOR_LOGIN_LIMIT` failed sign-ins for the email or from the address, 429 without checking."""
    limiter: LoginLimiter = request.app.state.login_limiter
    client = request.client.host if request.client else None
    sessions = _sessions(request)
    return limiter.attempt(
        body.email,
        client,
        lambda: manage.login(sessions, email=body.email, password=body.password, expires=body.expires),
    )


# --- who calls --------------------------------------------------------------------------------------------


@router.get("/whoami", response_model=schemas.Whoami, tags=["tokens"])
def whoami(caller: Caller) -> dict[str, Any]:
    """Who the token acts as: what `orchestrator whoami -o json` prints."""
    return principal_view(caller)
