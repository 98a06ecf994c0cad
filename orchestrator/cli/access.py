"""`orchestrator access`: ask for an account (anyone), and review the requests (admins)."""

from __future__ import annotations

import json
from typing import Any

import click

from orchestrator.cli.auth import authorize, open_sessions, token_option
from orchestrator.cli.db import database_url_option
from orchestrator.cli.options import format_option, server_url
from orchestrator.errors import ConfigError
from orchestrator.logs import get_logger

log = get_logger(__name__)

STATUSES = ("pending", "approved", "denied")  # store.identity's (a unit test keeps them equal)
ROLES = ("admin", "deployer", "viewer")  # store.models.Role


@click.group("access")
def access_group() -> None:
    """Access requests: ask for an account, and approve or deny the requests (admins)."""


@access_group.command("request")
@click.option("--email", required=True, help="Your email address (your user name once approved).")
@click.option("--name", "full_name", required=True, help="Your full name.")
@click.option("--org", "organization", default=None, help="Your organisation.")
@click.option("--reason", default=None, help="Why you need access.")
@format_option
@database_url_option
def request_command(
    email: str, full_name: str, organization: str | None, reason: str | None, output: str, database_url: str
) -> None:
    """Ask for an account; an admin approves it with a role. No token is needed."""
    if (server := server_url()) is not None:
        from orchestrator.cli import remote_identity

        body = {"email": email, "full_name": full_name, "organization": organization, "reason": reason}
        show_requested(remote_identity.post(server, "/access-requests", body, token=False), output)
        return
    from orchestrator.identity.views import access_request_view
    from orchestrator.store import identity as store

    with open_sessions(database_url).begin() as session:
        request = store.create_access_request(
            session, email=email, full_name=full_name, organization=organization, reason=reason
        )
        view = access_request_view(request)
    log.info("access requested", email=view["email"], request=view["id"])
    show_requested(view, output)


def show_requested(view: dict[str, Any], output: str) -> None:
    if output == "json":
        click.echo(json.dumps(view, indent=2))
        return
    click.echo(
        f"access request {view['id'][:8]} from {view['email']} is pending; an admin approves it with "
        f"`orchestrator access approve {view['id'][:8]} --role ROLE`"
    )


@access_group.command("list")
@click.option("--status", type=click.Choice(STATUSES), default=None, help="Only requests in this state.")
@token_option
@format_option
@database_url_option
def list_command(status: str | None, output: str, database_url: str) -> None:
    """The access requests, oldest first (admins)."""
    if (server := server_url()) is not None:
        from orchestrator.cli import remote_identity

        params = {"status": status} if status else None
        show_requests(remote_identity.get(server, "/access-requests", params=params), status, output)
        return
    from orchestrator.identity.rules import Action
    from orchestrator.identity.views import access_request_view
    from orchestrator.store import identity as store

    sessions = open_sessions(database_url)
    authorize(Action.REVIEW_ACCESS, None, database_url, sessions=sessions)
    with sessions() as session:
        views = [access_request_view(r) for r in store.list_access_requests(session, status)]
    show_requests(views, status, output)


def show_requests(views: list[dict[str, Any]], status: str | None, output: str) -> None:
    if output == "json":
        click.echo(json.dumps(views, indent=2))
        return
    if not views:
        click.echo("no access requests" + (f" {status}" if status else ""))
        return
    for view in views:
        org = f", {view['organization']}" if view["organization"] else ""
        reviewed = f" by {view['reviewed_by'] or 'local login'}" if view["status"] != "pending" else ""
        click.echo(
            f"{view['id'][:8]}  {view['status']:<8}  {view['email']} ({view['full_name']}{org})"
            f"{reviewed}  {view['reason'] or ''}".rstrip()
        )


def _review(ref: str, *, approve: bool, role: str | None, note: str | None, output: str, url: str) -> None:
    if (server := server_url()) is not None:
        from orchestrator.cli import remote_identity

        action, body = ("approve", {"role": role}) if approve else ("deny", {"reason": note})
        view = remote_identity.post(server, f"/access-requests/{remote_identity.segment(ref)}/{action}", body)
        show_reviewed(view, approve=approve, role=role, output=output)
        return
    from orchestrator.identity.rules import Action
    from orchestrator.identity.views import access_request_view
    from orchestrator.store import identity as store
    from orchestrator.store.models import Role

    sessions = open_sessions(url)
    reviewer = authorize(Action.REVIEW_ACCESS, None, url, sessions=sessions)
    if reviewer.bootstrap and approve and store.parse_role(role or "") is not Role.ADMIN:
        # With no users, an approved deployer would be the only user and nobody could ever administer.
        raise ConfigError("the first user must be an admin; approve with --role admin", key="--role")
    with sessions.begin() as session:
        request = store.get_access_request(session, ref, lock=True)
        store.review_access_request(
            session, request, approve=approve, role=role, reviewer_id=reviewer.user_id, note=note
        )
        view = access_request_view(request)
    log.info(
        "access request reviewed",
        email=view["email"],
        status=view["status"],
        by=reviewer.email,
    )
    show_reviewed(view, approve=approve, role=role, output=output)


def show_reviewed(view: dict[str, Any], *, approve: bool, role: str | None, output: str) -> None:
    if output == "json":
        click.echo(json.dumps(view, indent=2))
    elif approve:
        click.echo(
            f"approved {view['email']} as {role}; give them a first token with "
            f"`orchestrator tokens create --user {view['email']}`"
        )
    else:
        click.echo(f"denied the access request of {view['email']}")


@access_group.command("approve")
@click.argument("request_id", metavar="ID")
@click.option("--role", required=True, type=click.Choice(ROLES), help="The new user's role.")
@token_option
@format_option
@database_url_option
def approve_command(request_id: str, role: str, output: str, database_url: str) -> None:
    """Approve access request ID: its user is created, active, with ROLE (admins)."""
    _review(request_id, approve=True, role=role, note=None, output=output, url=database_url)


@access_group.command("deny")
@click.argument("request_id", metavar="ID")
@click.option("--reason", default=None, help="Why (kept with the request).")
@token_option
@format_option
@database_url_option
def deny_command(request_id: str, reason: str | None, output: str, database_url: str) -> None:
    """Deny access request ID (admins)."""
    _review(request_id, approve=False, role=None, note=reason, output=output, url=database_url)
