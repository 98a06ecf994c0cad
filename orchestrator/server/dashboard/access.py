"""Access: the request-access form anyone can fill in (`/request-access`, no sign-in, as the REST API's
access-request route needs no token), the admins' review queue (approve with a role, deny with a reason),
users (list, create, change a role, disable and enable) and API tokens (list, create — the token shown
once — and revoke) at `/access`.

Every action is `identity/manage.py`'s, the functions the REST API's identity routes call, which check
`rules.require` themselves: a non-admin posting an admin's form gets 403 from the rule, whatever the page
showed. Non-admins see their own tokens only, and no admin's forms or buttons.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from orchestrator.errors import OrchestratorError
from orchestrator.identity import manage
from orchestrator.identity.rules import Action, allowed
from orchestrator.server.dashboard import csrf, session
from orchestrator.server.dashboard.guard import CheckedForm, Viewer
from orchestrator.server.dashboard.pages import DashboardRoute, page_router, render
from orchestrator.server.problems import status_of

router = page_router()
# Asking for access comes before any account: these routes need no session (the login page's rules).
public = APIRouter(route_class=DashboardRoute, include_in_schema=False)

REQUEST_PATH = "/request-access"
# Before a session there is no secret to derive a CSRF token from: a random cookie repeated in the form
# (SameSite=Strict, only sent to this path), as the login form does.
REQUEST_COOKIE = "orchestrator_access_csrf"

Ref = Annotated[str, Path(min_length=4, max_length=36, pattern=r"^[0-9a-zA-Z_-]+$")]
RoleName = Literal["admin", "deployer", "viewer"]
ROLES = ("viewer", "deployer", "admin")
DONE = Literal["approved", "denied", "user-created", "role-changed", "disabled", "enabled", "revoked"]
Email = Annotated[str, Path(min_length=3, max_length=255)]


# --- asking for access (signed out) -----------------------------------------------------------------------


def _request_form(
    request: Request,
    *,
    status_code: int = 200,
    message: str = "",
    sent: dict[str, Any] | None = None,
    fields: dict[str, str] | None = None,
) -> Response:
    token = csrf.new_login_token()
    response = render(
        request,
        "request_access.html",
        status_code=status_code,
        form_csrf=token,
        message=message,
        sent=sent,
        fields=fields or {},
    )
    response.set_cookie(
        REQUEST_COOKIE,
        token,
        httponly=True,
        secure=session.is_secure(request),
        samesite="strict",
        path=REQUEST_PATH,
    )
    return response


@public.get(REQUEST_PATH, response_class=HTMLResponse)
def request_access_form(request: Request) -> Response:
    return _request_form(request)


@public.post(REQUEST_PATH, response_class=HTMLResponse)
def request_access(
    request: Request,
    # Empty or malformed fields reach the store, whose message is shown on the form (not a JSON 422).
    email: Annotated[str, Form(max_length=255)] = "",
    full_name: Annotated[str, Form(max_length=255)] = "",
    organization: Annotated[str, Form(max_length=255)] = "",
    reason: Annotated[str, Form(max_length=2000)] = "",
    csrf_token: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    fields = {"email": email, "full_name": full_name, "organization": organization, "reason": reason}
    if not csrf.login_token_matches(request.cookies.get(REQUEST_COOKIE), csrf_token):
        return _request_form(
            request, status_code=403, message="the form expired; send it again", fields=fields
        )
    try:
        sent = manage.request_access(
            request.app.state.sessions,
            email=email,
            full_name=full_name,
            organization=organization.strip() or None,
            reason=reason.strip() or None,
        )
    except OrchestratorError as exc:  # said on the form, with what was typed kept
        return _request_form(request, status_code=status_of(exc), message=str(exc), fields=fields)
    return _request_form(request, status_code=201, sent=sent)


# --- the access page (signed in) --------------------------------------------------------------------------


def _page(request: Request, viewer: Viewer, **extra: Any) -> HTMLResponse:
    sessions = request.app.state.sessions
    principal = viewer.principal
    admin = allowed(principal, Action.MANAGE_USERS)
    reviewer = allowed(principal, Action.REVIEW_ACCESS)
    everyone = allowed(principal, Action.MANAGE_TOKENS)
    return render(
        request,
        "access.html",
        pending=manage.list_access_requests(sessions, principal, "pending") if reviewer else None,
        users=manage.list_users(sessions, principal) if admin else None,
        tokens=manage.list_tokens(sessions, principal, everyone=everyone),
        all_tokens=everyone,
        roles=ROLES,
        **extra,
    )


@router.get("/access", response_class=HTMLResponse)
def access(
    request: Request,
    viewer: Viewer,
    done: Annotated[DONE | None, Query()] = None,
    subject: Annotated[str, Query(max_length=255)] = "",
) -> HTMLResponse:
    return _page(request, viewer, done=done, subject=subject)


def _back(done: str, subject: str) -> RedirectResponse:
    from urllib.parse import urlencode

    return RedirectResponse(f"/access?{urlencode({'done': done, 'subject': subject})}", status_code=303)


@router.post("/access/requests/{ref}/approve")
def approve_request(
    request: Request,
    viewer: Viewer,
    form: CheckedForm,  # noqa: ARG001  (checked for CSRF)
    ref: Ref,
    role: Annotated[RoleName, Form()],
) -> Response:
    reviewed = manage.review_access(
        request.app.state.sessions, viewer.principal, ref, approve=True, role=role, note=None
    )
    return _back("approved", reviewed["email"])


@router.post("/access/requests/{ref}/deny")
def deny_request(
    request: Request,
    viewer: Viewer,
    form: CheckedForm,  # noqa: ARG001
    ref: Ref,
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    reviewed = manage.review_access(
        request.app.state.sessions,
        viewer.principal,
        ref,
        approve=False,
        role=None,
        note=reason.strip() or None,
    )
    return _back("denied", reviewed["email"])


@router.post("/access/users")
def create_user(
    request: Request,
    viewer: Viewer,
    form: CheckedForm,  # noqa: ARG001
    email: Annotated[str, Form(min_length=3, max_length=255)],
    role: Annotated[RoleName, Form()],
) -> Response:
    created = manage.create_user(request.app.state.sessions, viewer.principal, email, role)
    return _back("user-created", created["email"])


@router.post("/access/users/{email}/role")
def change_role(
    request: Request,
    viewer: Viewer,
    form: CheckedForm,  # noqa: ARG001
    email: Email,
    role: Annotated[RoleName, Form()],
) -> Response:
    """A new role (the last active admin stays one: `manage.change_user` refuses otherwise)."""
    changed = manage.change_user(request.app.state.sessions, viewer.principal, email, role=role, status=None)
    return _back("role-changed", changed["email"])


@router.post("/access/users/{email}/status")
def change_status(
    request: Request,
    viewer: Viewer,
    form: CheckedForm,  # noqa: ARG001
    email: Email,
    status: Annotated[Literal["active", "disabled"], Form()],
) -> Response:
    """Disable (their tokens and sessions stop authenticating at once) or enable a user."""
    changed = manage.change_user(
        request.app.state.sessions, viewer.principal, email, role=None, status=status
    )
    return _back("enabled" if status == "active" else "disabled", changed["email"])


@router.post("/access/tokens", response_class=HTMLResponse)
def create_token(
    request: Request,
    viewer: Viewer,
    form: CheckedForm,  # noqa: ARG001
    name: Annotated[str, Form(min_length=1, max_length=100)] = "api",
    expires: Annotated[str, Form(max_length=20)] = "90d",
    user: Annotated[str, Form(max_length=255)] = "",
) -> Response:
    """The new token's secret is in this answer only (never stored, never in a URL); no cache keeps it."""
    made = manage.create_token(
        request.app.state.sessions, viewer.principal, name=name, expires=expires, user=user.strip() or None
    )
    response = _page(request, viewer, new_token=made)
    response.status_code = 201
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/access/tokens/{ref}/revoke")
def revoke_token(
    request: Request,
    viewer: Viewer,
    form: CheckedForm,  # noqa: ARG001
    ref: Ref,
) -> Response:
    revoked = manage.revoke_token(request.app.state.sessions, viewer.principal, ref)
    return _back("revoked", revoked["prefix"])
