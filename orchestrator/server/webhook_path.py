"""The webhook routes answered without FastAPI's request machinery: the one hot path of the server.

Every `POST /webhooks/github` and `POST /webhooks/registry` is answered by this middleware calling the route's
own endpoint (`webhooks.py`), with the request as FastAPI would hand it over, and its errors answered by the
application's own exception handlers (`problems.py`). What it skips is what a delivery does not need:
the exception middleware's wrapping, the async exit stack, the router's walk over every route, and FastAPI's
request handler (dependency solving for an endpoint that takes only the request). Together those were about a
sixth of the server's CPU per delivery (py-spy, `benchmarks/webhooks.py`; docs/benchmarks.md).

The routes stay declared on their router, so the OpenAPI document describes them and schemathesis checks
what this answers against it. The middleware sits inside the request counter (`metrics.CountRequests`) and
Starlette's server-error middleware, which still count every delivery under its route and answer anything
unexpected with the application's 500 handler. Any other method or path (a GET, a trailing slash) goes on
to FastAPI, which answers it as it always did.
"""

from __future__ import annotations

from fastapi.routing import APIRoute, APIRouter
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send


class WebhookFastPath:
    """`app.add_middleware(WebhookFastPath, router=...)`: the router's POST routes, each an endpoint taking
    only the request, answered here."""

    def __init__(self, app: ASGIApp, router: APIRouter) -> None:
        self.app = app
        self.routes = {
            route.path: route
            for route in router.routes
            if isinstance(route, APIRoute) and route.methods == {"POST"} and "{" not in route.path
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.routes.get(scope["path"]) if scope["type"] == "http" else None
        if route is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        scope["route"] = route  # as the router sets it: the request counter labels by its path
        request = Request(scope, receive)
        try:
            response: Response = await route.endpoint(request)
        except Exception as exc:
            response = await _handled(request, exc)
        await response(scope, receive, send)


async def _handled(request: Request, exc: Exception) -> Response:
    """The application's handler for `exc` (the most specific class registered), as Starlette's exception
    middleware picks it; with none but the catch-all, `exc` goes on up to the server-error middleware, which
    answers with the catch-all handler and logs it, as for any other route."""
    handlers = request.app.exception_handlers
    for kind in type(exc).__mro__:
        if kind is Exception:
            break
        handler = handlers.get(kind)
        if handler is not None:
            response: Response = await handler(request, exc)
            return response
    raise exc
