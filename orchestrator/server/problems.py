"""Errors as one JSON shape: RFC 9457 problem details (`application/problem+json`).

Every error the server answers, whatever raised it, is `{type, title, status, detail}` (plus `errors` for a
request that failed validation), so clients — the CLI in `--server` mode, GitHub, a dashboard — parse one
thing. The orchestrator's own error types map as the command line maps them to exit codes: bad input
(ConfigError, exit 2) is 400 or 422, a refusal is 403, anything else that failed is 409 or 500.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from orchestrator.errors import ConfigError, OrchestratorError

MEDIA_TYPE = "application/problem+json"

TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    429: "Too Many Requests",
    422: "Unprocessable Content",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class Problem(Exception):
    """An error answered as problem details; `status` is the HTTP status."""

    def __init__(self, status: int, title: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail, self.extra = status, title, detail, extra


def problem_response(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE)


def status_of(exc: OrchestratorError) -> int:
    """The HTTP status of an orchestrator error: the most specific type decides (checked in order)."""
    from orchestrator.identity.rules import NotSignedInError, PermissionDeniedError
    from orchestrator.identity.signin import LoginFailedError
    from orchestrator.identity.tokens import InvalidTokenError
    from orchestrator.server.login_limit import LoginThrottledError
    from orchestrator.store.db import DatabaseUnavailableError
    from orchestrator.store.identity import TokenNotFoundError, UserNotFoundError
    from orchestrator.store.repository import DeploymentNotFoundError, DeploymentRefError

    statuses: list[tuple[type[Exception], int]] = [
        (InvalidTokenError, 401),
        (NotSignedInError, 401),
        (LoginFailedError, 401),  # a wrong email or password: as an unknown token would be
        (LoginThrottledError, 429),  # too many failed sign-ins: not checked
        (PermissionDeniedError, 403),
        (DeploymentNotFoundError, 404),
        (DeploymentRefError, 404),  # the path names no deployment (not hex, too short)
        (UserNotFoundError, 404),
        (TokenNotFoundError, 404),
        (DatabaseUnavailableError, 503),
        (ConfigError, 422),  # bad input: the body or a parameter names something wrong (exit 2)
    ]
    for kind, status in statuses:
        if isinstance(exc, kind):
            return status
    return 409  # the operation was refused or failed in the state things are in (exit 1)


def from_error(exc: OrchestratorError) -> JSONResponse:
    """The error as problem details; `exit_code` is what the command line exits with for it, so a client in
    `--server` mode exits as the local command would."""
    status = status_of(exc)
    response = problem_response(status, TITLES.get(status, "Error"), str(exc), exit_code=exc.exit_code)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="orchestrator"'
    retry_after = getattr(exc, "retry_after", None)
    if isinstance(retry_after, int):
        response.headers["Retry-After"] = str(retry_after)
    return response


def install(app: FastAPI) -> None:
    """Answer every error as problem details."""

    @app.exception_handler(Problem)
    async def _problem(_request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc.status, exc.title, exc.detail, **exc.extra)

    @app.exception_handler(OrchestratorError)
    async def _orchestrator(_request: Request, exc: OrchestratorError) -> JSONResponse:
        return from_error(exc)

    @app.exception_handler(HTTPException)
    async def _http(_request: Request, exc: HTTPException) -> JSONResponse:
        response = problem_response(exc.status_code, TITLES.get(exc.status_code, "Error"), str(exc.detail))
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"location": ".".join(str(part) for part in error["loc"]), "message": error["msg"]}
            for error in exc.errors()
        ]
        detail = "; ".join(f"{e['location']}: {e['message']}" for e in errors) or "the request is not valid"
        return problem_response(422, "Unprocessable Content", detail, errors=errors, exit_code=2)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        # Logged with its traceback by the server's logger; the client gets no internals.
        from orchestrator.logs import get_logger

        get_logger(__name__).exception("request_crashed", error=type(exc).__name__)
        return problem_response(500, "Internal Server Error", "the server failed to answer; see its log")
