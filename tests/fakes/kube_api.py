"""The smallest Kubernetes API server that still proves authentication: a few read-only paths, bearer checked.

For tests that only need "this client reaches an API server and is accepted" without the whole emulator
(`orchestrator.sim`). Answers `/version`, `/api` and `/api/v1/namespaces` as Kubernetes does, after
`authenticator(bearer_token)` accepts the request; otherwise 401 with a Kubernetes `Status` body.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import trustme

from tests.fakes.https import FakeHTTPSServer, Request, Response


class FakeKubeApi(FakeHTTPSServer):
    def __init__(self, authenticator: Callable[[str], bool], *, ca: trustme.CA | None = None) -> None:
        super().__init__(ca=ca)
        self.authenticator = authenticator
        self.seen_tokens: list[str] = []
        self.route("GET", r"/version")(self._authenticated(self._version))
        self.route("GET", r"/api/?")(self._authenticated(self._api))
        self.route("GET", r"/api/v1/namespaces")(self._authenticated(self._namespaces))

    def _authenticated(
        self, handler: Callable[[Request, re.Match[str]], Response]
    ) -> Callable[..., Response]:
        def check(request: Request, match: re.Match[str]) -> Response:
            token = request.bearer_token()
            if token is not None:
                self.seen_tokens.append(token)
            if token is None or not self.authenticator(token):
                return _status(401, "Unauthorized", "Unauthorized")
            return handler(request, match)

        return check

    def _version(self, request: Request, match: re.Match[str]) -> Response:
        return Response.json(
            {"major": "1", "minor": "31", "gitVersion": "v1.31.0", "platform": "linux/amd64"}
        )

    def _api(self, request: Request, match: re.Match[str]) -> Response:
        return Response.json(
            {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{self.port}"}
                ],
            }
        )

    def _namespaces(self, request: Request, match: re.Match[str]) -> Response:
        items = [
            {
                "metadata": {"name": name, "uid": f"uid-{name}", "resourceVersion": "1"},
                "status": {"phase": "Active"},
            }
            for name in ("default", "kube-system")
        ]
        return Response.json(
            {
                "kind": "NamespaceList",
                "apiVersion": "v1",
                "metadata": {"resourceVersion": "1"},
                "items": items,
            }
        )


def _status(code: int, reason: str, message: str) -> Response:
    return Response.json(
        {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": code,
        },
        status=code,
    )
