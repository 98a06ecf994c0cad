"""GitHub deployments through github3.py: create one for a deployment of ours, send its statuses.

github3.py 4.0.1's `Deployment.create_status` sends only state, target_url and description; `log_url`,
`environment_url`, `environment` and `auto_inactive` need the request itself, so statuses are POSTed
through the client's own authenticated session (`gh.session`: its token, headers, timeouts and
adapters) rather than a second HTTP client. `auto_inactive` is false: the orchestrator marks the
deployment a success replaced `inactive` itself, so a rollback's GitHub history says what ran when.

The client (`api.client`: the API root, the token, a pinned private CA) is shared with pull requests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import github3
import requests
from github3 import exceptions as gh_errors

from orchestrator.github.api import GitHubError, client, failure

__all__ = ["Created", "GitHubError", "client", "create_deployment", "post_status"]

DESCRIPTION_LIMIT = 140  # GitHub refuses longer deployment and status descriptions


@dataclass(frozen=True)
class Created:
    github_id: int
    statuses_url: str


def create_deployment(
    gh: github3.GitHub,
    repository: str,
    *,
    ref: str,
    environment: str,
    description: str,
    payload: dict[str, Any],
) -> Created:
    """A GitHub deployment of `ref` (the release's commit) to `environment`."""
    owner, name = repository.split("/", 1)
    what = f"creating a GitHub deployment in {repository}"
    try:
        repo = gh.repository(owner, name)
        if repo is None:
            raise GitHubError(f"{what}: no repository {repository}")
        created = repo.create_deployment(
            ref,
            required_contexts=[],  # the orchestrator's own gates decide, not commit statuses
            payload=payload,
            auto_merge=False,
            description=description[:DESCRIPTION_LIMIT],
            environment=environment,
        )
    except (gh_errors.GitHubException, requests.RequestException) as exc:
        raise failure(what, exc) from None
    if created is None:
        raise GitHubError(f"{what}: GitHub created nothing")
    return Created(int(created.id), str(created.statuses_url))


def post_status(
    gh: github3.GitHub,
    statuses_url: str,
    *,
    state: str,
    environment: str,
    description: str,
    log_url: str | None,
    environment_url: str | None,
) -> None:
    """One deployment status, with the fields github3.py's `create_status` cannot send."""
    body: dict[str, Any] = {
        "state": state,
        "environment": environment,
        "description": description[:DESCRIPTION_LIMIT],
        "auto_inactive": False,
    }
    if log_url:
        body["log_url"] = log_url
    if environment_url:
        body["environment_url"] = environment_url
    what = f"sending the {state} status"
    try:
        response = gh.session.post(statuses_url, json=body)
    except requests.RequestException as exc:
        raise failure(what, gh_errors.TransportError(exc)) from None
    if response.status_code != 201:
        raise failure(what, gh_errors.error_for(response))
