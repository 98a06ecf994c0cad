"""The webhook fast path: POST routes answered by their endpoint without FastAPI's router, everything else
passed on, errors answered by the application's own handlers, the request counter still seeing the route."""

from __future__ import annotations

import asyncio
import json
from collections.abc import MutableMapping
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from orchestrator.server.problems import Problem, problem_response
from orchestrator.server.webhook_path import WebhookFastPath

router = APIRouter()
seen: list[dict[str, Any]] = []  # the scope each endpoint call saw


@router.post("/hook")
async def hook(request: Request) -> JSONResponse:
    seen.append(dict(request.scope))
    body = await request.body()
    if body == b"refuse":
        raise Problem(401, "Unauthorized", "no signature")
    if body == b"crash":
        raise RuntimeError("a bug")
    return JSONResponse({"read": body.decode()}, status_code=202)


def _app() -> tuple[FastAPI, list[str]]:
    app = FastAPI()
    app.include_router(router)
    reached: list[str] = []  # what got past the fast path into the rest of the application

    @app.middleware("http")
    async def record(request: Request, call_next: Any) -> Any:
        reached.append(f"{request.method} {request.url.path}")
        return await call_next(request)

    app.add_middleware(WebhookFastPath, router=router)  # added last: outside the recorder

    @app.exception_handler(Problem)
    async def _problem(_request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc.status, exc.title, exc.detail)

    return app, reached


def _call(app: FastAPI, method: str, path: str, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"test"), (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 1),
        "server": ("test", 80),
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    headers = {k.decode(): v.decode() for k, v in start["headers"]}
    body_parts = [m.get("body", b"") for m in sent if m["type"] == "http.response.body"]
    return start["status"], headers, b"".join(body_parts)


def test_a_post_is_answered_by_its_endpoint_without_the_rest_of_the_application() -> None:
    app, reached = _app()
    seen.clear()
    status, _, body = _call(app, "POST", "/hook", b"payload")
    assert (status, json.loads(body)) == (202, {"read": "payload"})
    assert reached == []  # neither the recorder nor the router ran
    assert seen[-1]["route"].path == "/hook"  # what the request counter labels by
    assert seen[-1]["app"] is app


def test_other_methods_and_paths_go_on_to_fastapi() -> None:
    app, reached = _app()
    assert _call(app, "GET", "/hook")[0] == 405
    assert _call(app, "POST", "/hook/")[0] == 307  # FastAPI's own redirect of a trailing slash
    assert _call(app, "POST", "/elsewhere")[0] == 404
    assert reached == ["GET /hook", "POST /hook/", "POST /elsewhere"]


def test_an_error_is_answered_by_the_applications_handler() -> None:
    app, reached = _app()
    status, headers, body = _call(app, "POST", "/hook", b"refuse")
    assert status == 401
    assert headers["content-type"] == "application/problem+json"
    assert json.loads(body)["detail"] == "no signature"
    assert reached == []


def test_an_unexpected_error_goes_on_to_the_server_error_middleware() -> None:
    app, _ = _app()
    # Starlette's ServerErrorMiddleware answers 500 and re-raises for the server to log, as for any route.
    with pytest.raises(RuntimeError, match="a bug"):
        _call(app, "POST", "/hook", b"crash")
