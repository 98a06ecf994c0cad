"""What every dashboard route depends on: the signed-in user (`Viewer`), the CSRF check of a POST
(`CheckedForm`), and whether the user may do an action (`may`), decided by `identity.rules` as the REST API
decides it. A route that changes something still calls `rules.require` itself before acting: a button that
is not shown is a courtesy, the check is the rule."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.datastructures import FormData

from orchestrator.errors import OrchestratorError
from orchestrator.identity.principal import Principal
from orchestrator.identity.rules import Action, allowed
from orchestrator.server.dashboard import csrf, session


class SignInRequiredError(OrchestratorError):
    """No session, or one that no longer authenticates: a page sends the browser to the login form."""


class ForgedRequestError(OrchestratorError):
    """A POST without the session's CSRF token (or with another one): refused with 403, nothing done."""


def signed_in(request: Request) -> session.Session:
    found = session.current(request)
    if found is None:
        raise SignInRequiredError("sign in to use the dashboard")
    request.state.dashboard_session = found  # for the page layout (who is signed in, the CSRF token)
    return found


Viewer = Annotated[session.Session, Depends(signed_in)]


async def checked_form(request: Request, viewer: Viewer) -> FormData:
    """The POST's form, once its CSRF token (field or htmx header) is the session's."""
    form = await request.form()
    sent = request.headers.get(csrf.HEADER) or form.get(csrf.FIELD)
    if not isinstance(sent, str) or not csrf.session_token_matches(viewer.secret, sent):
        raise ForgedRequestError(
            "this form's CSRF token is missing or is not this session's; reload the page and try again"
        )
    return form


CheckedForm = Annotated[FormData, Depends(checked_form)]


def may(request: Request, principal: Principal, action: Action, environment: str | None) -> bool:
    """Whether the button for `action` (in `environment`) is shown: the rules' own answer. The checkout's
    configuration is read once per request, however many buttons a page asks about."""
    project = getattr(request.state, "dashboard_project", None)
    if project is None:
        project = request.state.dashboard_project = request.app.state.rollouts.project()
    try:
        where = project.environment(environment) if environment is not None else None
    except OrchestratorError:
        return False  # an environment no longer configured: nothing can be done there
    try:
        return allowed(principal, action, where)
    except ValueError:
        return False
