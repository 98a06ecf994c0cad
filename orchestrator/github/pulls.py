"""Pull requests through github3.py: open one for a pushed branch (or find the one already open), close one.

Pull-request mode proposes a deployment's desired state as a branch of the GitOps repository and a pull
request onto the environment's branch. Opening is safe to repeat: a driver that died after GitHub created
the pull request but before it was recorded opens it again, GitHub answers 422 (one already exists for that
head), and the open pull request of that head onto that base is adopted instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import github3
import requests
from github3 import exceptions as gh_errors

from orchestrator.github.api import GitHubError, failure

TITLE_LIMIT = 256  # GitHub's title limit


@dataclass(frozen=True)
class PullRequest:
    repository: str  # owner/name
    number: int
    url: str  # the page people review it on (html_url)
    head: str  # branch
    base: str  # branch
    head_sha: str


def _repository(gh: github3.GitHub, repository: str, what: str) -> github3.repos.Repository:
    owner, name = repository.split("/", 1)
    repo = gh.repository(owner, name)
    if repo is None:
        raise GitHubError(f"{what}: no repository {repository}")
    return repo


def _of(repository: str, pull: github3.pulls.ShortPullRequest) -> PullRequest:
    return PullRequest(
        repository=repository,
        number=int(pull.number),
        url=str(pull.html_url),
        head=str(pull.head.ref),
        base=str(pull.base.ref),
        head_sha=str(pull.head.sha),
    )


def open_pull_request(
    gh: github3.GitHub, repository: str, *, head: str, base: str, title: str, body: str
) -> PullRequest:
    """The pull request of branch `head` onto `base` in `repository`: opened now, or the one already open."""
    what = f"opening a pull request of {head} onto {base} in {repository}"
    try:
        repo = _repository(gh, repository, what)
        try:
            created = repo.create_pull(title[:TITLE_LIMIT], base, head, body=body)
        except gh_errors.UnprocessableEntity:
            owner = repository.split("/", 1)[0]
            existing = next(iter(repo.pull_requests(state="open", head=f"{owner}:{head}", base=base)), None)
            if existing is None:
                raise
            created = existing
    except (gh_errors.GitHubException, requests.RequestException) as exc:
        raise failure(what, exc) from None
    if created is None:
        raise GitHubError(f"{what}: GitHub created nothing")
    return _of(repository, created)


def close_pull_request(gh: github3.GitHub, repository: str, number: int) -> None:
    """Close an open pull request without merging it (its deployment was withdrawn)."""
    what = f"closing pull request #{number} in {repository}"
    try:
        pull = _repository(gh, repository, what).pull_request(number)
        if pull is None:
            raise GitHubError(f"{what}: no such pull request")
        if pull.state != "closed" and not pull.close():
            raise GitHubError(f"{what}: GitHub did not close it")
    except (gh_errors.GitHubException, requests.RequestException) as exc:
        raise failure(what, exc) from None
