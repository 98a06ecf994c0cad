"""`orchestrator login` (a password for a token, saved for later commands) and `orchestrator whoami`."""

from __future__ import annotations

import json

import click

from orchestrator.cli.auth import acting, logger, open_sessions, read_password, token_option
from orchestrator.cli.db import database_url_option
from orchestrator.cli.options import format_option
from orchestrator.errors import OrchestratorError
from orchestrator.identity import tokens

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

    now = utcnow()
    expires_at = tokens.parse_expiry(expires, now)
    address = store.normalize_email(email)
    password = read_password()
    with open_sessions(database_url).begin() as session:
        signed_in = sign_in(session, address, password, token_name="login", expires_at=expires_at, now=now)
    new, role = signed_in.token, signed_in.role.value
    path = write_token_file(new.secret)
    logger(__name__).info("signed in", user=address, prefix=new.prefix, saved_to=str(path))
    if output == "json":
        view = {"email": address, "role": role, "token": tokens.display(new.prefix), "token_file": str(path)}
        click.echo(json.dumps(view, indent=2))
        return
    click.echo(f"signed in as {address} ({role}); token {tokens.display(new.prefix)} saved to {path}")


@click.command("whoami")
@token_option
@format_option
@database_url_option
def whoami_command(output: str, database_url: str) -> None:
    """Who the CLI acts as: the token's user and role, or the local login on a database without users."""
    principal = acting(database_url)
    if principal is None:
        raise OrchestratorError(
            "not signed in: give --token, set ORCHESTRATOR_TOKEN, or run `orchestrator login --email EMAIL`"
        )
    view = {
        "email": principal.email,
        "role": principal.role.value,
        "user_id": str(principal.user_id) if principal.user_id else None,
        "token": tokens.display(principal.token_prefix) if principal.token_prefix else None,
        "bootstrap": principal.bootstrap,
    }
    if output == "json":
        click.echo(json.dumps(view, indent=2))
    elif principal.bootstrap:
        click.echo("the local login (admin): this database has no users yet")
    else:
        click.echo(f"{view['email']} ({view['role']}), token {view['token']}")
