"""`orchestrator login` (a password for a token, saved for later commands) and `orchestrator whoami`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from orchestrator.cli.auth import acting, open_sessions, read_password, token_option
from orchestrator.cli.db import database_url_option
from orchestrator.cli.options import format_option, server_url
from orchestrator.errors import OrchestratorError
from orchestrator.identity import tokens
from orchestrator.logs import get_logger

log = get_logger(__name__)

LOGIN_EXPIRY = "30d"


@click.command("login")
@click.option("--email", required=True, help="Your email.")
@click.option(
    "--expires", default=LOGIN_EXPIRY, show_default=True, help="Lifetime of the token: 12h, 30d, 2w."
)
@format_option
@database_url_option
def login_command(email: str, expires: str, output: str, database_url: str) -> None:
    """Exchange your password (read from stdin) for a token, saved (mode 0600) for later commands."""
    from orchestrator.identity.principal import write_token_file
    from orchestrator.identity.signin import sign_in
    from orchestrator.store import identity as store
    from orchestrator.store.models import utcnow

    if (server := server_url()) is not None:
        from orchestrator.cli import remote_identity

        password = read_password()
        body = {"email": email, "password": password, "expires": expires}
        answer = remote_identity.post(server, "/login", body, token=False)
        path = write_token_file(answer["secret"])  # later commands, through the server too, act with it
        show_signed_in(answer["email"], answer["role"], answer["token"], path, output)
        return
    now = utcnow()
    expires_at = tokens.parse_expiry(expires, now)
    address = store.normalize_email(email)
    password = read_password()
    with open_sessions(database_url).begin() as session:
        signed_in = sign_in(session, address, password, token_name="login", expires_at=expires_at, now=now)
    new, role = signed_in.token, signed_in.role.value
    path = write_token_file(new.secret)
    log.info("signed in", user=address, prefix=new.prefix, saved_to=str(path))
    show_signed_in(address, role, tokens.display(new.prefix), path, output)


def show_signed_in(address: str, role: str, token: str, path: Path, output: str) -> None:
    if output == "json":
        view = {"email": address, "role": role, "token": token, "token_file": str(path)}
        click.echo(json.dumps(view, indent=2))
        return
    click.echo(f"signed in as {address} ({role}); token {token} saved to {path}")


@click.command("whoami")
@token_option
@format_option
@database_url_option
def whoami_command(output: str, database_url: str) -> None:
    """Who the CLI acts as: the token's user and role, or the local login on a database without users."""
    if (server := server_url()) is not None:
        from orchestrator.cli import remote_identity

        show_whoami(remote_identity.get(server, "/whoami"), output)
        return
    principal = acting(database_url)
    if principal is None:
        raise OrchestratorError(
            "not signed in: give --token, set ORCHESTRATOR_TOKEN, or run `orchestrator login --email EMAIL`"
        )
    from orchestrator.identity.views import principal_view

    view = principal_view(principal)
    show_whoami(view, output)


def show_whoami(view: dict[str, Any], output: str) -> None:
    if output == "json":
        click.echo(json.dumps(view, indent=2))
    elif view["bootstrap"]:
        click.echo("the local login (admin): this database has no users yet")
    else:
        click.echo(f"{view['email']} ({view['role']}), token {view['token']}")
