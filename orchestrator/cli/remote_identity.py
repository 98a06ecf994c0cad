"""`users`, `access`, `tokens` and `whoami` as clients of the REST API (`orchestrator --server URL …`).

Each command asks the API's identity routes (`server/api/identity.py`) for what its local twin does and
prints the answer with the local command's own printer, so output and exit codes are the same; an error is
the problem's `exit_code` and `detail`, as in `remote.py`. The rules are the server's: the token's user acts
(there is no local login over the network, so a server without users answers 401, and `users create` makes
no first admin's token there), and `--database-url` is refused rather than silently ignored.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from orchestrator.cli.remote import Api, connected, refuse_local_options


def segment(ref: str) -> str:
    """`ref` as one path segment (an email's `@`, or a stray `/`, cannot reach another route)."""
    return quote(ref, safe="")


def call(server: str, method: str, path: str, **kwargs: Any) -> Any:
    refuse_local_options("database_url")
    with connected(server) as api:
        return api.call(method, path, **kwargs)


def get(server: str, path: str, *, params: dict[str, str] | None = None) -> Any:
    return call(server, "GET", path, params=params)


def post(server: str, path: str, body: dict[str, Any], *, token: bool = True) -> Any:
    """POST `body` (its None values left out: the API's defaults apply, as the options' do locally);
    `token=False` for asking for access, which needs none (and a stale one must not refuse it)."""
    sent = {key: value for key, value in body.items() if value is not None}
    if token:
        return call(server, "POST", path, json=sent)
    refuse_local_options("database_url")
    api = Api(server, authenticated=False)
    try:
        return api.call("POST", path, json=sent)
    finally:
        api.close()


def create_user(server: str, email: str, role: str, password: str | None, output: str) -> None:
    from orchestrator.cli.users import show_created

    body = {"email": email, "role": role, "password": password}
    show_created(post(server, "/users", body), None, None, output)


def change_user(server: str, email: str, change: dict[str, str]) -> dict[str, Any]:
    view: dict[str, Any] = call(server, "PATCH", f"/users/{segment(email)}", json=change)
    return view
