"""A small threaded HTTPS server for fakes of cloud control planes, with a certificate from a trustme CA.

Fakes register routes (method + path regex) and answer with `Response`s; every request is logged so tests
can assert on what the real client library sent. Several fakes can share one CA, so one CA file is all a
client needs to trust them all.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
import ssl
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

import trustme


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    connection: int = 0  # which connection carried it, numbered from 1 in the order they were accepted
    client_name: str | None = None  # the client certificate's common name, when one was asked for

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode("utf-8"), keep_blank_values=True).items()}

    def bearer_token(self) -> str | None:
        scheme, _, value = self.headers.get("authorization", "").partition(" ")
        return value if scheme.lower() == "bearer" and value else None

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, payload: Any, status: int = 200) -> Response:
        return cls(status, json.dumps(payload).encode(), {"Content-Type": "application/json"})


Handler = Callable[[Request, "re.Match[str]"], Response]


class FakeHTTPSServer:
    """HTTPS on 127.0.0.1 (a free port), certificate for 127.0.0.1 and localhost signed by `ca`.

    `require_client_certificate`: refuse clients without a certificate signed by `ca` (mutual TLS).
    `hang_up_after_each_response`: close every connection once its answer is out, without saying so in a
    header, as a load balancer that drops idle connections does.
    """

    def __init__(self, *, ca: trustme.CA | None = None, require_client_certificate: bool = False) -> None:
        self.ca = ca or trustme.CA()
        self.require_client_certificate = require_client_certificate
        self.hang_up_after_each_response = False
        self.requests: list[Request] = []
        self._connections = itertools.count(1)
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._dir: Path | None = None

    # -- routes ---------------------------------------------------------------------------------------

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self._routes.append((method.upper(), re.compile(pattern), handler))
            return handler

        return register

    def dispatch(self, request: Request) -> Response:
        self.requests.append(request)
        for method, pattern, handler in self._routes:
            match = pattern.fullmatch(request.path)
            if match and method == request.method:
                return handler(request, match)
        return Response.json({"error": f"no route for {request.method} {request.path}"}, status=404)

    # -- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> Self:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        if self.require_client_certificate:
            self.ca.configure_trust(context)
            context.verify_mode = ssl.CERT_REQUIRED
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(self))
        server.daemon_threads = True
        server.socket = context.wrap_socket(server.socket, server_side=True)
        self._server = server
        self._dir = Path(tempfile.mkdtemp(prefix="fake-https-"))
        self._thread = threading.Thread(target=server.serve_forever, name="fake-https", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- addresses and trust --------------------------------------------------------------------------

    @property
    def port(self) -> int:
        assert self._server is not None, "start() the fake first"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_pem(self) -> bytes:
        return self.ca.cert_pem.bytes()

    @property
    def ca_path(self) -> Path:
        """The CA certificate as a PEM file (removed when the fake stops)."""
        assert self._dir is not None, "start() the fake first"
        path = self._dir / "ca.pem"
        if not path.exists():
            self.ca.cert_pem.write_to_path(str(path))
        return path


def _handler_class(fake: FakeHTTPSServer) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the client libraries expect

        def setup(self) -> None:
            super().setup()
            self.number = next(fake._connections)  # one handler per connection

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            request = Request(
                method=self.command,
                path=parts.path,
                query=parse_qs(parts.query, keep_blank_values=True),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
                connection=self.number,
                client_name=_common_name(self.connection.getpeercert()),  # type: ignore[attr-defined]
            )
            try:
                response = fake.dispatch(request)
            except Exception as exc:  # a bug in a fake must show up in the test, not hang the client
                response = Response.json({"error": f"fake failed: {exc!r}"}, status=500)
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            self.wfile.write(response.body)
            self.close_connection = fake.hang_up_after_each_response

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:  # quiet: the request log is in `requests`
            return

    return _Handler


def _common_name(certificate: dict[str, Any] | None) -> str | None:
    subject = dict(pair[0] for pair in (certificate or {}).get("subject", ()))
    name = subject.get("commonName")
    return str(name) if name is not None else None
