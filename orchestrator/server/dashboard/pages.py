"""Rendering a page: the Jinja templates, the base layout's context (who is signed in, the CSRF token, the
navigation, `may` for buttons), and errors as pages.

Every route of the dashboard is a `DashboardRoute`, so an orchestrator error raised anywhere in it — a
dependency included — is answered as an HTML page with the status the REST API would give it
(`problems.status_of`), and a request without a session is sent to the login form.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates

from orchestrator import __version__
from orchestrator.errors import OrchestratorError
from orchestrator.identity.rules import Action
from orchestrator.server import problems
from orchestrator.server.dashboard import csrf, formats, guard

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.globals["version"] = __version__
templates.env.filters.update(
    age=formats.age, short_commit=formats.short_commit, short_digest=formats.short_digest
)

# Sent with every dashboard page: nothing but our own files runs or loads (no inline script), no framing.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


@dataclass(frozen=True)
class NavItem:
    label: str
    path: str


# The navigation bar, in order. A page module adds its entry in `dashboard/__init__.py`.
NAV: list[NavItem] = []


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """The page `template` with the layout's context; `viewer` is None on pages shown signed out."""
    found = getattr(request.state, "dashboard_session", None)
    principal = found.principal if found is not None else None

    def may(action: str, environment: str | None = None) -> bool:
        return principal is not None and guard.may(request, principal, Action(action), environment)

    response = templates.TemplateResponse(
        request,
        template,
        {
            "viewer": principal,
            "csrf_token": csrf.for_session(found.secret) if found is not None else "",
            "csrf_field": csrf.FIELD,
            "csrf_header": csrf.HEADER,
            "nav": NAV,
            "may": may,
            **context,
        },
        status_code=status_code,
    )
    response.headers.update(SECURITY_HEADERS)
    return response


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    return render(
        request,
        "error.html",
        status_code=status,
        status=status,
        title=problems.TITLES.get(status, "Error"),
        message=message,
    )


def _to_login(request: Request) -> Response:
    if request.headers.get("HX-Request"):
        # htmx follows HX-Redirect with a full page load; a plain redirect would be swapped into the page.
        return Response(status_code=401, headers={"HX-Redirect": "/login"})
    if request.method != "GET":
        return error_page(request, 401, "your session has ended; sign in again")
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


class DashboardRoute(APIRoute):
    """A route whose errors are pages (see the module's docstring)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await handle(request)
            except guard.SignInRequiredError:
                return _to_login(request)
            except guard.ForgedRequestError as exc:
                return error_page(request, 403, str(exc))
            except OrchestratorError as exc:
                return error_page(request, problems.status_of(exc), str(exc))

        return handler


def page_router() -> APIRouter:
    """The router of a page module: its routes are `DashboardRoute`s, need a signed-in user (a route that
    needs the principal asks for `guard.Viewer` too; FastAPI resolves it once per request), and stay out of
    the REST API's OpenAPI document."""
    return APIRouter(
        route_class=DashboardRoute, include_in_schema=False, dependencies=[Depends(guard.signed_in)]
    )
