"""`orchestrator users`: create, list, change the role of, and disable users (admins).

On a database without users, `users create EMAIL --role admin` makes the first admin: it prints that admin's
first token once and saves it where `orchestrator login` would, so this checkout goes on as that admin.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from orchestrator.cli.auth import authorize, open_sessions, read_password, token_option
from orchestrator.cli.db import database_url_option
from orchestrator.cli.options import format_option, server_url
from orchestrator.errors import ConfigError
from orchestrator.identity import tokens
from orchestrator.logs import get_logger

log = get_logger(__name__)

ROLES = ("admin", "deployer", "viewer")  # store.models.Role (a unit test keeps them equal)


@click.group("users")
def users_group() -> None:
    """Users and their roles: admin, deployer, viewer (admins)."""


@users_group.command("create")
@click.argument("email")
@click.option("--role", required=True, type=click.Choice(ROLES), help="The user's role.")
@click.option("--password-stdin", is_flag=True, help="Read a password (for `orchestrator login`) from stdin.")
@token_option
@format_option
@database_url_option
def create_command(email: str, role: str, password_stdin: bool, output: str, database_url: str) -> None:
    """Create the user EMAIL, active, with ROLE."""
    if (server := server_url()) is not None:
        from orchestrator.cli import remote_identity

        password = read_password() if password_stdin else None
        remote_identity.create_user(server, email, role, password, output)
        return
    from orchestrator.identity import passwords
    from orchestrator.identity.principal import write_token_file
    from orchestrator.identity.rules import Action
    from orchestrator.identity.views import user_view
    from orchestrator.store import identity as store
    from orchestrator.store.models import Role

    sessions = open_sessions(database_url)
    actor = authorize(Action.MANAGE_USERS, None, database_url, sessions=sessions)
    if actor.bootstrap and role != Role.ADMIN.value:
        raise ConfigError("the first user must be an admin; create it with --role admin", key="--role")
    password_hash = passwords.hash_password(read_password()) if password_stdin else passwords.NO_PASSWORD
    first = tokens.generate() if actor.bootstrap else None
    with sessions.begin() as session:
        user = store.create_user(session, email, role, password_hash=password_hash)
        if first is not None:
            store.add_token(
                session,
                user,
                name="first token",
                token_hash=first.token_hash,
                prefix=first.prefix,
                expires_at=None,
            )
        view = user_view(user)
    saved = write_token_file(first.secret) if first is not None else None
    log.info(
        "user created",
        email=view["email"],
        role=role,
        by=actor.email,
        first_admin=first is not None,
    )
    show_created(view, first.secret if first is not None else None, saved, output)


def show_created(view: dict[str, Any], first_secret: str | None, saved: Path | None, output: str) -> None:
    """What `users create` prints (the first admin's token only on the machine that made it)."""
    if output == "json":
        click.echo(json.dumps({**view, "token_file": str(saved) if saved else None}, indent=2))
        return
    click.echo(f"created {view['email']} ({view['role']}, {view['status']})")
    if first_secret is not None:
        click.echo(f"first admin's token (shown once; saved to {saved}, so this checkout acts as them):")
        click.echo(first_secret)


@users_group.command("list")
@token_option
@format_option
@database_url_option
def list_command(output: str, database_url: str) -> None:
    """Every user with role and status."""
    if (server := server_url()) is not None:
        from orchestrator.cli import remote_identity

        show_users(remote_identity.get(server, "/users"), output)
        return
    from orchestrator.identity.rules import Action
    from orchestrator.identity.views import user_view
    from orchestrator.store import identity as store

    sessions = open_sessions(database_url)
    authorize(Action.MANAGE_USERS, None, database_url, sessions=sessions)
    with sessions() as session:
        views = [user_view(u) for u in store.list_users(session)]
    show_users(views, output)


def show_users(views: list[dict[str, Any]], output: str) -> None:
    if output == "json":
        click.echo(json.dumps(views, indent=2))
        return
    if not views:
        click.echo("no users yet")
    for view in views:
        since = view["created_at"][:10]
        click.echo(f"{view['email']:<40} {view['role']:<9} {view['status']:<9} since {since}")


@users_group.command("set-role")
@click.argument("email")
@click.argument("role", type=click.Choice(ROLES))
@token_option
@format_option
@database_url_option
def set_role_command(email: str, role: str, output: str, database_url: str) -> None:
    """Give the user EMAIL the role ROLE."""
    if (server := server_url()) is not None:
        from orchestrator.cli import remote_identity

        view = remote_identity.change_user(server, email, {"role": role})
        show_user(view, f"{view['email']} is now {view['role']}", output)
        return
    view = _change(database_url, email, role=role, status=None)
    show_user(view, f"{view['email']} is now {view['role']}", output)


@users_group.command("disable")
@click.argument("email")
@token_option
@format_option
@database_url_option
def disable_command(email: str, output: str, database_url: str) -> None:
    """Disable the user EMAIL: their tokens stop working at once (they are kept, to show in the audit)."""
    if (server := server_url()) is not None:
        from orchestrator.cli import remote_identity

        view = remote_identity.change_user(server, email, {"status": "disabled"})
        show_user(view, f"{view['email']} is disabled", output)
        return
    view = _change(database_url, email, role=None, status="disabled")
    show_user(view, f"{view['email']} is disabled", output)


@users_group.command("enable")
@click.argument("email")
@token_option
@format_option
@database_url_option
def enable_command(email: str, output: str, database_url: str) -> None:
    """Enable the user EMAIL again; tokens that are neither revoked nor expired work again."""
    if (server := server_url()) is not None:
        from orchestrator.cli import remote_identity

        view = remote_identity.change_user(server, email, {"status": "active"})
        show_user(view, f"{view['email']} is active", output)
        return
    view = _change(database_url, email, role=None, status="active")
    show_user(view, f"{view['email']} is active", output)


def _change(database_url: str, email: str, *, role: str | None, status: str | None) -> dict[str, Any]:
    """A new role or status through `identity/manage.change_user`, as the API and the dashboard make it
    (the last active admin stays one)."""
    from orchestrator.identity import manage
    from orchestrator.identity.rules import Action

    sessions = open_sessions(database_url)
    principal = authorize(Action.MANAGE_USERS, None, database_url, sessions=sessions)
    return manage.change_user(sessions, principal, email, role=role, status=status)


def show_user(view: dict[str, Any], said: str, output: str) -> None:
    click.echo(json.dumps(view, indent=2) if output == "json" else said)
