"""GitHub deployments through github3.py: create one for a deployment of ours, send its statuses.

github3.py 4.0.1's `Deployment.create_status` sends only state, target_url and description; `log_url`,
`environment_url`, `environment` and `auto_inactive` need the request itself, so statuses are POSTed
through the client's own authenticated session (`gh.session`: its token, headers, timeouts and
adapters) rather than a second HTTP client. `auto_inactive` is false: the orchestrator marks the
deployment a success replaced `inactive` itself, so a rollback's GitHub history says what ran when.

`api_url` is the REST API root (`https://api.github.com`, GitHub Enterprise's `https://HOST/api/v3`, a test
fake). A `ca_bundle` is pinned on the session's HTTPS adapter: requests lets `REQUESTS_CA_BUNDLE` win over a
session's `verify`, so setting `session.verify` alone would not take effect where that variable is set.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import github3
import requests
from github3 import exceptions as gh_errors
from requests.adapters import HTTPAdapter

from orchestrator.errors import OrchestratorError

DESCRIPTION_LIMIT = 140  # GitHub refuses longer deployment and status descriptions


class GitHubError(OrchestratorError):
    """A GitHub request failed; the message says what GitHub answered (never the token)."""


class _PinnedCA(HTTPAdapter):
    """Verifies every HTTPS connection against one CA file, whatever the environment says."""

    def __init__(self, ca_bundle: str) -> None:
        super().__init__()
        self.ca_bundle = ca_bundle

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs["verify"] = self.ca_bundle
        return super().send(request, **kwargs)


def client(api_url: str, token: str, *, ca_bundle: Path | None = None) -> github3.GitHub:
    """An authenticated github3.py client for the API at `api_url`."""
    gh = github3.GitHub(token=token)
    gh.session.base_url = api_url.rstrip("/")
    if ca_bundle is not None:
        if not ca_bundle.is_file():
            raise GitHubError(f"github.caBundle {ca_bundle} is not a file")
        gh.session.mount("https://", _PinnedCA(str(ca_bundle)))
    return gh


def _failure(what: str, exc: Exception) -> GitHubError:
    if isinstance(exc, gh_errors.GitHubError):
        return GitHubError(f"{what}: GitHub answered {exc.code} {exc.msg or ''}".rstrip())
    if isinstance(exc, gh_errors.TransportError):
        kind = "timed out" if isinstance(exc.exception, requests.Timeout) else "unreachable"
        return GitHubError(f"{what}: GitHub {kind} ({type(exc.exception).__name__})")
    return GitHubError(f"{what}: {type(exc).__name__}")


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
        raise _failure(what, exc) from None
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
        raise _failure(what, gh_errors.TransportError(exc)) from None
    if response.status_code != 201:
        raise _failure(what, gh_errors.error_for(response))
