"""Signing in and out: `GET /login` (the form), `POST /login` (email and password), `POST /logout`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse

from orchestrator.identity.signin import LoginFailedError
from orchestrator.server.dashboard import csrf, session
from orchestrator.server.dashboard.guard import CheckedForm
from orchestrator.server.dashboard.pages import DashboardRoute, render
from orchestrator.server.login_limit import LoginLimiter, LoginThrottledError

router = APIRouter(route_class=DashboardRoute, include_in_schema=False)


def _local(target: str | None) -> str:
    """Where to go after signing in: a path of this server only (never `//elsewhere` or a URL)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def _form(request: Request, *, status_code: int = 200, message: str = "", email: str = "") -> Response:
    token = csrf.new_login_token()
    response = render(
        request,
        "login.html",
        status_code=status_code,
        login_csrf=token,
        message=message,
        email=email,
        next=_local(request.query_params.get("next")),
    )
    response.set_cookie(
        csrf.LOGIN_COOKIE,
        token,
        httponly=True,
        secure=session.is_secure(request),
        samesite="strict",
        path="/login",
    )
    return response


@router.get("/login")
def login_form(request: Request) -> Response:
    if session.current(request) is not None:
        return RedirectResponse(_local(request.query_params.get("next")), status_code=303)
    return _form(request)


@router.post("/login")
def login(
    request: Request,
    email: Annotated[str, Form(max_length=320)],
    password: Annotated[str, Form(max_length=1024)],
    csrf_token: Annotated[str, Form(max_length=256)] = "",
    next: Annotated[str, Form(max_length=2048)] = "/",
) -> Response:
    if not csrf.login_token_matches(request.cookies.get(csrf.LOGIN_COOKIE), csrf_token):
        return _form(request, status_code=403, message="the form expired; sign in again", email=email)
    response = RedirectResponse(_local(next), status_code=303)
    limiter: LoginLimiter = request.app.state.login_limiter
    client = request.client.host if request.client else None
    try:
        limiter.attempt(email, client, lambda: session.open_session(request, response, email, password))
    except LoginThrottledError as exc:
        refused = _form(request, status_code=429, message=str(exc), email=email)
        refused.headers["Retry-After"] = str(exc.retry_after)
        return refused
    except LoginFailedError as exc:
        return _form(request, status_code=401, message=str(exc), email=email)
    response.delete_cookie(csrf.LOGIN_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(request: Request, form: CheckedForm) -> Response:  # noqa: ARG001  (checked for CSRF)
    response = RedirectResponse("/login", status_code=303)
    session.close_session(request, response)
    return response
