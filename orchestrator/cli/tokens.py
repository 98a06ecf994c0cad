"""`orchestrator tokens`: API tokens for yourself (or, for admins, for anyone): create, list, revoke.

A new token is printed once, alone on stdout (so `TOKEN=$(orchestrator tokens create)` works); what it is
goes to stderr. Only its SHA-256 and its prefix are stored, so it cannot be shown again.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from orchestrator.cli.auth import acting, open_sessions, token_option
from orchestrator.cli.db import database_url_option
from orchestrator.cli.options import format_option, server_url
from orchestrator.identity import tokens

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from orchestrator.identity.principal import Principal


DEFAULT_EXPIRY = "90d"


@click.group("tokens")
def tokens_group() -> None:
    """API tokens: what `--token`, ORCHESTRATOR_TOKEN and the REST API accept."""


def _signed_in(database_url: str, sessions: sessionmaker[Session]) -> Principal:
    from orchestrator.identity.rules import Action, require

    principal = acting(database_url, sessions)
    if principal is None:
        # The same refusal `require` gives any action without a token.
        require(None, Action.MANAGE_TOKENS)
    assert principal is not None
    return principal


@tokens_group.command("create")
@click.option("--user", "email", default=None, metavar="EMAIL", help="For this user (admins); default: you.")
@click.option("--name", default="cli", show_default=True, help="What the token is for.")
@click.option(
    "--expires", default=DEFAULT_EXPIRY, show_default=True, help="Lifetime: 12h, 30d, 2w, or never."
)
@token_option
@database_url_option
def create_command(email: str | None, name: str, expires: str, database_url: str) -> None:
    """Make a token and print it once."""
    if (server := server_url()) is not None:
        from orchestrator.cli import remote_identity

        body = {"name": name, "expires": expires, "user": email}
        made = remote_identity.post(server, "/tokens", body)
        show_created(made["secret"], made["prefix"], made["user"], name, made["expires_at"])
        return
    from orchestrator.identity import manage
    from orchestrator.store.models import utcnow

    tokens.parse_expiry(expires, utcnow())  # a bad --expires is bad usage before anyone is asked for
    sessions = open_sessions(database_url)
    principal = _signed_in(database_url, sessions)
    made = manage.create_token(sessions, principal, name=name, expires=expires, user=email, user_key="--user")
    show_created(made["secret"], made["prefix"], made["user"], name, made["expires_at"])


def show_created(secret: str, prefix: str, owner: str, name: str, expires_at: str | None) -> None:
    """The new token alone on stdout; what it is on stderr."""
    until = f"expires {expires_at}" if expires_at else "never expires"
    click.echo(f"token {prefix} for {owner} ({name}, {until}); shown once:", err=True)
    click.echo(secret)


@tokens_group.command("list")
@click.option("--user", "email", default=None, metavar="EMAIL", help="This user's tokens (admins).")
@click.option("--all", "everyone", is_flag=True, help="Every user's tokens (admins).")
@token_option
@format_option
@database_url_option
def list_command(email: str | None, everyone: bool, output: str, database_url: str) -> None:
    """Tokens: prefix, name, created, last used, expiry (never the token itself)."""
    if (server := server_url()) is not None:
        from orchestrator.cli import remote_identity

        params = {"all": "true"} if everyone else ({"user": email} if email else None)
        show_tokens(remote_identity.get(server, "/tokens", params=params), output)
        return
    from orchestrator.identity import manage

    sessions = open_sessions(database_url)
    principal = _signed_in(database_url, sessions)
    show_tokens(manage.list_tokens(sessions, principal, user=email, everyone=everyone), output)


def show_tokens(views: list[dict[str, Any]], output: str) -> None:
    if output == "json":
        click.echo(json.dumps(views, indent=2))
        return
    if not views:
        click.echo("no tokens")
        return
    header = ("PREFIX", "NAME", "USER", "STATE", "CREATED (UTC)", "LAST USED", "EXPIRES")
    rows_out = [header] + [
        (
            v["prefix"],
            v["name"],
            v["user"],
            v["state"],
            v["created_at"][:19],
            (v["last_used_at"] or "never")[:19],
            (v["expires_at"] or "never")[:19],
        )
        for v in views
    ]
    widths = [max(len(r[i]) for r in rows_out) for i in range(len(header))]
    for row in rows_out:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


@tokens_group.command("revoke")
@click.argument("token_ref", metavar="PREFIX_OR_ID")
@token_option
@format_option
@database_url_option
def revoke_command(token_ref: str, output: str, database_url: str) -> None:
    """Revoke a token (yours; admins: anyone's), named by the prefix `tokens list` shows or its id."""
    if (server := server_url()) is not None:
        from orchestrator.cli import remote_identity

        revoked = remote_identity.call(server, "DELETE", f"/tokens/{remote_identity.segment(token_ref)}")
        changed = revoked.pop("changed")
        show_revoked(revoked, changed=changed, output=output)
        return
    from orchestrator.identity import manage

    sessions = open_sessions(database_url)
    revoked = manage.revoke_token(sessions, _signed_in(database_url, sessions), token_ref)
    changed = revoked.pop("changed")
    show_revoked(revoked, changed=changed, output=output)


def show_revoked(view: dict[str, Any], *, changed: bool, output: str) -> None:
    if output == "json":
        click.echo(json.dumps(view, indent=2))
        return
    when = view["revoked_at"]
    outcome = "revoked" if changed else f"was already revoked ({when})"
    click.echo(f"token {view['prefix']} of {view['user']} {outcome}")
