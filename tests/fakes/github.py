"""A fake of the GitHub REST endpoints the orchestrator uses, over HTTPS (a trustme CA), for github3.py.

Served: GET /repos/{owner}/{repo}, POST and GET /repos/{owner}/{repo}/deployments, POST and GET
/repos/{owner}/{repo}/deployments/{id}/statuses. Bodies follow GitHub's documented shapes closely enough
for github3.py's models, which read many keys. Requests must carry `Authorization: token <token>` (401
otherwise). `unavailable` answers that many requests with 503 first (GitHub down).
"""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime
from typing import Any

from tests.fakes.https import FakeHTTPSServer, Request, Response

_REPO_URLS = [
    "archive_url",
    "assignees_url",
    "blobs_url",
    "branches_url",
    "collaborators_url",
    "comments_url",
    "commits_url",
    "compare_url",
    "contents_url",
    "contributors_url",
    "deployments_url",
    "downloads_url",
    "events_url",
    "forks_url",
    "git_commits_url",
    "git_refs_url",
    "git_tags_url",
    "hooks_url",
    "issue_comment_url",
    "issue_events_url",
    "issues_url",
    "keys_url",
    "labels_url",
    "languages_url",
    "merges_url",
    "milestones_url",
    "notifications_url",
    "pulls_url",
    "releases_url",
    "stargazers_url",
    "statuses_url",
    "subscribers_url",
    "subscription_url",
    "tags_url",
    "teams_url",
    "trees_url",
]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeGitHub:
    def __init__(
        self, *, owner: str = "addtocloud", repo: str = "platform", token: str = "gh-test-token"
    ) -> None:
        self.owner, self.repo, self.token = owner, repo, token
        self.server = FakeHTTPSServer()
        self.deployments: dict[int, dict[str, Any]] = {}
        self.statuses: dict[int, list[dict[str, Any]]] = {}
        self.unavailable = 0
        self._ids = itertools.count(1001)
        base = rf"/repos/{re.escape(owner)}/{re.escape(repo)}"
        self.server.route("GET", base)(self._guard(self._repository))
        self.server.route("POST", base + r"/deployments")(self._guard(self._create_deployment))
        self.server.route("GET", base + r"/deployments")(self._guard(self._list_deployments))
        self.server.route("POST", base + r"/deployments/(\d+)/statuses")(self._guard(self._create_status))
        self.server.route("GET", base + r"/deployments/(\d+)/statuses")(self._guard(self._list_statuses))

    def __enter__(self) -> FakeGitHub:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()

    @property
    def api_url(self) -> str:
        return self.server.url

    @property
    def ca_path(self) -> str:
        return str(self.server.ca_path)

    def states(self, deployment_id: int) -> list[str]:
        return [s["state"] for s in self.statuses.get(deployment_id, [])]

    # -- handlers -------------------------------------------------------------------------------------

    def _guard(self, handler: Any) -> Any:
        def guarded(request: Request, match: re.Match[str]) -> Response:
            if self.unavailable > 0:
                self.unavailable -= 1
                return Response.json({"message": "Service Unavailable"}, status=503)
            if request.headers.get("authorization") != f"token {self.token}":
                return Response.json({"message": "Bad credentials"}, status=401)
            return handler(request, match)  # type: ignore[no-any-return]

        return guarded

    def _user(self) -> dict[str, Any]:
        login = "orchestrator-bot"
        url = f"{self.api_url}/users/{login}"
        return {
            "login": login,
            "id": 7,
            "avatar_url": "",
            "gravatar_id": "",
            "url": url,
            "html_url": f"https://github.example/{login}",
            "followers_url": url + "/followers",
            "following_url": url + "/following{/other_user}",
            "gists_url": url + "/gists{/gist_id}",
            "starred_url": url + "/starred{/owner}{/repo}",
            "subscriptions_url": url + "/subscriptions",
            "organizations_url": url + "/orgs",
            "repos_url": url + "/repos",
            "events_url": url + "/events{/privacy}",
            "received_events_url": url + "/received_events",
            "type": "Bot",
            "site_admin": False,
        }

    def _repository(self, request: Request, match: re.Match[str]) -> Response:
        url = f"{self.api_url}/repos/{self.owner}/{self.repo}"
        body: dict[str, Any] = {key: f"{url}/{key.removesuffix('_url')}" for key in _REPO_URLS}
        body.update(
            {
                "id": 42,
                "name": self.repo,
                "full_name": f"{self.owner}/{self.repo}",
                "owner": self._user(),
                "private": True,
                "description": "fake",
                "fork": False,
                "url": url,
                "html_url": f"https://github.example/{self.owner}/{self.repo}",
                "clone_url": "",
                "git_url": "",
                "ssh_url": "",
                "svn_url": "",
                "mirror_url": None,
                "homepage": None,
                "language": "Python",
                "archived": False,
                "default_branch": "main",
                "forks_count": 0,
                "stargazers_count": 0,
                "watchers_count": 0,
                "subscribers_count": 0,
                "network_count": 0,
                "open_issues_count": 0,
                "size": 1,
                "has_downloads": True,
                "has_issues": True,
                "has_pages": False,
                "has_projects": False,
                "has_wiki": False,
                "created_at": "2024-01-01T00:00:00Z",
                "updated_at": _now(),
                "pushed_at": _now(),
                "permissions": {"admin": False, "push": True, "pull": True},
            }
        )
        return Response.json(body)

    def _deployment_json(self, deployment: dict[str, Any]) -> dict[str, Any]:
        return deployment

    def _create_deployment(self, request: Request, match: re.Match[str]) -> Response:
        data = request.json()
        if not data.get("ref"):
            return Response.json({"message": "ref is required"}, status=422)
        number = next(self._ids)
        url = f"{self.api_url}/repos/{self.owner}/{self.repo}/deployments/{number}"
        deployment = {
            "id": number,
            "url": url,
            "sha": data["ref"],
            "ref": data["ref"],
            "task": "deploy",
            "payload": data.get("payload", {}),
            "environment": data.get("environment") or "production",
            "description": data.get("description"),
            "creator": self._user(),
            "created_at": _now(),
            "updated_at": _now(),
            "statuses_url": url + "/statuses",
            "repository_url": f"{self.api_url}/repos/{self.owner}/{self.repo}",
            "request": data,  # what the client sent (not a GitHub field; for the test's eyes)
        }
        self.deployments[number] = deployment
        self.statuses[number] = []
        return Response.json(deployment, status=201)

    def _list_deployments(self, request: Request, match: re.Match[str]) -> Response:
        return Response.json(list(self.deployments.values()))

    def _create_status(self, request: Request, match: re.Match[str]) -> Response:
        number = int(match.group(1))
        if number not in self.deployments:
            return Response.json({"message": "Not Found"}, status=404)
        data = request.json()
        if data.get("state") not in (
            "error",
            "failure",
            "inactive",
            "in_progress",
            "queued",
            "pending",
            "success",
        ):
            return Response.json({"message": f"bad state {data.get('state')!r}"}, status=422)
        deployment_url = self.deployments[number]["url"]
        status = {
            "id": len(self.statuses[number]) + 1,
            "url": f"{deployment_url}/statuses/{len(self.statuses[number]) + 1}",
            "state": data["state"],
            "creator": self._user(),
            "description": data.get("description", ""),
            "environment": data.get("environment", ""),
            "target_url": data.get("target_url", ""),
            "log_url": data.get("log_url", ""),
            "environment_url": data.get("environment_url", ""),
            "auto_inactive": data.get("auto_inactive", True),
            "created_at": _now(),
            "updated_at": _now(),
            "deployment_url": deployment_url,
            "repository_url": f"{self.api_url}/repos/{self.owner}/{self.repo}",
        }
        self.statuses[number].append(status)
        return Response.json(status, status=201)

    def _list_statuses(self, request: Request, match: re.Match[str]) -> Response:
        return Response.json(self.statuses.get(int(match.group(1)), []))
