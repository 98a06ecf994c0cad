"""How a command learns who runs it and checks it may: `--token`, the acting principal, `authorize`.

Every command that changes something calls `authorize(action, environment, database_url)` first, before it
renders or applies anything; the rules themselves live in `identity/rules.py`, the token lookup in
`identity/principal.py` (which the REST API uses too). The store and the rules are imported inside the
functions: this module is imported for every command's `--help`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from orchestrator.identity.tokens import TOKEN_ENV

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from orchestrator.config import Environment, Project
    from orchestrator.identity.principal import Principal
    from orchestrator.identity.rules import Action

F = TypeVar("F", bound=Callable[..., Any])

_TOKEN = "orchestrator.token"
_NOTICE_SHOWN = "orchestrator.bootstrap_notice"
BOOTSTRAP_NOTICE = (
    "note: this database has no users yet, so the CLI acts as the local login with the admin role; "
    "`orchestrator users create EMAIL --role admin` makes the first admin and ends this"
)


def _remember_token(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:  # noqa: ARG001
    if value:
        ctx.meta[_TOKEN] = value  # meta is shared by the whole command line, so the group's option counts too
    return value


def token_option(func: F) -> F:
    """`--token TOKEN`; kept in the click context (not passed to the command), read by `acting`."""
    return click.option(
        "--token",
        metavar="TOKEN",
        expose_value=False,
        callback=_remember_token,
        help=(
            f"API token to act with [env {TOKEN_ENV}; default: the file "
            "`orchestrator login` writes in the state folder]"
        ),
    )(func)


def explicit_token() -> str | None:
    """The `--token` given to this command line, if any (the token file and variable are looked up by
    `principal.find_token`)."""
    ctx = click.get_current_context(silent=True)
    return ctx.meta.get(_TOKEN) if ctx is not None else None


def open_sessions(database_url: str) -> sessionmaker[Session]:
    """Sessions on the state database (the store's one rule for its schema), without importing the cluster
    clients `runtime` pulls in."""
    from orchestrator.store import db

    return db.open_sessions(database_url)


def acting(database_url: str, sessions: sessionmaker[Session] | None = None) -> Principal | None:
    """Who runs this command (None: users exist and no token was given). The bootstrap login says so on
    stderr once per command; log lines carry the user from here on."""
    from orchestrator.identity import principal as principals
    from orchestrator.logs import bind_context

    ctx = click.get_current_context(silent=True)
    explicit = ctx.meta.get(_TOKEN) if ctx is not None else None
    with (sessions or open_sessions(database_url)).begin() as session:
        principal = principals.resolve(session, explicit)
    if principal is not None and principal.bootstrap and ctx is not None and not ctx.meta.get(_NOTICE_SHOWN):
        ctx.meta[_NOTICE_SHOWN] = True
        click.echo(BOOTSTRAP_NOTICE, err=True)
    if principal is not None:
        bind_context(user=principal.email, role=principal.role.value)
    return principal


def authorize(
    action: Action,
    environment: Environment | str | None,
    database_url: str,
    *,
    project: Project | None = None,
    sessions: sessionmaker[Session] | None = None,
) -> Principal:
    """The acting principal if it may do `action` (in the environment, by name with `project`), else the
    refusal (exit 1) naming user, role, action, environment and who is allowed."""
    from orchestrator.identity.rules import require

    if isinstance(environment, str):
        if project is None:
            raise ValueError("an environment named by string needs the project")
        environment = project.environment(environment)
    return require(acting(database_url, sessions), action, environment)


def authorize_deployment(action: Action, project: Project, database_url: str, ref: str) -> Principal:
    """`authorize` in the environment of the deployment `ref` names (the controls take a deployment id)."""
    from orchestrator.store import repository

    sessions = open_sessions(database_url)
    with sessions() as session:
        environment = repository.get_deployment(session, ref).environment
    return authorize(action, environment, database_url, project=project, sessions=sessions)


def authorize_migration(database_url: str) -> Principal | None:
    """`db upgrade` and `db downgrade` need an admin once the database has users (None: nothing to check).

    The check reads the schema as it is: `open_sessions` would migrate the embedded database before the
    question was asked. The users and api_tokens tables are as the first migration made them, so any
    revision can answer it. A database without the orchestrator's schema has no users to ask: creating
    it runs unchecked, as it must for anyone to become the first admin.
    """
    from orchestrator.identity.rules import Action
    from orchestrator.store import db

    engine = db.make_engine(database_url)
    try:
        if db.current_revision(engine) is None:
            return None
        return authorize(Action.MIGRATE_DATABASE, None, database_url, sessions=db.session_factory(engine))
    finally:
        engine.dispose()


def read_password(source: str = "stdin") -> str:
    """The password piped in on stdin (one line; the newline is not part of it). Never echoed or logged."""
    text = sys.stdin.readline()
    password = text[:-1] if text.endswith("\n") else text
    if not password:
        raise click.UsageError(f"no password on {source}; pipe it in, e.g. `… --password-stdin < file`")
    return password
