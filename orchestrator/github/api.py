"""The GitHub REST API through github3.py: an authenticated client, and GitHub's answers as our errors.

`api_url` is the REST API root (`https://api.github.com`, GitHub Enterprise's `https://HOST/api/v3`, a test
fake). A `ca_bundle` is pinned on the session's HTTPS adapter: requests lets `REQUESTS_CA_BUNDLE` win over a
session's `verify`, so setting `session.verify` alone would not take effect where that variable is set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import github3
import requests
from github3 import exceptions as gh_errors
from requests.adapters import HTTPAdapter

from orchestrator.errors import OrchestratorError


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


def failure(what: str, exc: Exception) -> GitHubError:
    if isinstance(exc, gh_errors.GitHubError):
        return GitHubError(f"{what}: GitHub answered {exc.code} {exc.msg or ''}".rstrip())
    if isinstance(exc, gh_errors.TransportError):
        kind = "timed out" if isinstance(exc.exception, requests.Timeout) else "unreachable"
        return GitHubError(f"{what}: GitHub {kind} ({type(exc.exception).__name__})")
    return GitHubError(f"{what}: {type(exc).__name__}")
