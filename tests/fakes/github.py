"""A fake of the GitHub REST endpoints the orchestrator uses, over HTTPS (a trustme CA), for github3.py.

Served: GET /repos/{owner}/{repo}, POST and GET /repos/{owner}/{repo}/deployments, POST and GET
/repos/{owner}/{repo}/deployments/{id}/statuses, and pull requests: POST and GET /repos/{owner}/{repo}/pulls,
GET and PATCH /repos/{owner}/{repo}/pulls/{number}. Bodies follow GitHub's documented shapes closely enough
for github3.py's models, which read many keys. Requests must carry `Authorization: token <token>` (401
otherwise). `unavailable` answers that many requests with 503 first (GitHub down).

Pull requests are backed by a real bare git repository (`git_dir`, the repository GitHub "hosts"): opening
one needs its head branch to exist there, and `merge(number)` merges it as GitHub's merge button does — a
merge commit of base and head made with git (`merge-tree --write-tree`, `commit-tree`) and the base branch
moved to it — so whoever fetches the base branch afterwards reads what was merged. `merge` and `close`
return the `pull_request` webhook payload GitHub would send.
"""

from __future__ import annotations

import itertools
import os
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path
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
        self,
        *,
        owner: str = "addtocloud",
        repo: str = "platform",
        token: str = "gh-test-token",
        git_dir: Path | None = None,
    ) -> None:
        self.owner, self.repo, self.token = owner, repo, token
        self.git_dir = git_dir
        self.pulls: dict[int, dict[str, Any]] = {}
        self._pull_numbers = itertools.count(1)
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
        self.server.route("POST", base + r"/pulls")(self._guard(self._create_pull))
        self.server.route("GET", base + r"/pulls")(self._guard(self._list_pulls))
        self.server.route("GET", base + r"/pulls/(\d+)")(self._guard(self._get_pull))
        self.server.route("PATCH", base + r"/pulls/(\d+)")(self._guard(self._update_pull))

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

    # -- pull requests --------------------------------------------------------------------------------

    def _git(self, *args: str, input: bytes | None = None) -> str:
        assert self.git_dir is not None, "FakeGitHub(git_dir=...) hosts the repository pull requests use"
        env = {
            **os.environ,
            "GIT_AUTHOR_NAME": "Reviewer",
            "GIT_AUTHOR_EMAIL": "reviewer@addtocloud.test",
            "GIT_COMMITTER_NAME": "GitHub",
            "GIT_COMMITTER_EMAIL": "noreply@github.example",
        }
        process = subprocess.run(
            ["git", "--git-dir", str(self.git_dir), *args],
            input=input,
            capture_output=True,
            env=env,
            check=True,
        )
        return process.stdout.decode().strip()

    def _sha_of(self, branch: str) -> str | None:
        try:
            return self._git("rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}")
        except subprocess.CalledProcessError:
            return None

    def _end(self, branch: str, sha: str | None) -> dict[str, Any]:
        url = f"{self.api_url}/repos/{self.owner}/{self.repo}"
        repository = {
            "id": 42,
            "name": self.repo,
            "full_name": f"{self.owner}/{self.repo}",
            "owner": self._user(),
            "private": True,
            "html_url": f"https://github.example/{self.owner}/{self.repo}",
            "description": "fake",
            "fork": False,
            "url": url,
            **{key: f"{url}/{key.removesuffix('_url')}" for key in _REPO_URLS},
        }
        return {
            "label": f"{self.owner}:{branch}",
            "ref": branch,
            "sha": sha,
            "user": self._user(),
            "repo": repository,
        }

    def _pull_json(self, pull: dict[str, Any]) -> dict[str, Any]:
        number = pull["number"]
        url = f"{self.api_url}/repos/{self.owner}/{self.repo}/pulls/{number}"
        html = f"https://github.example/{self.owner}/{self.repo}/pull/{number}"
        issue = f"{self.api_url}/repos/{self.owner}/{self.repo}/issues/{number}"
        return {
            "url": url,
            "id": 5000 + number,
            "node_id": f"PR_{number}",
            "html_url": html,
            "diff_url": html + ".diff",
            "patch_url": html + ".patch",
            "issue_url": issue,
            "commits_url": url + "/commits",
            "review_comments_url": url + "/comments",
            "review_comment_url": f"{self.api_url}/repos/{self.owner}/{self.repo}/pulls/comments{{/number}}",
            "comments_url": issue + "/comments",
            "statuses_url": f"{self.api_url}/repos/{self.owner}/{self.repo}/statuses/{pull['head_sha']}",
            "number": number,
            "state": pull["state"],
            "locked": False,
            "active_lock_reason": None,
            "title": pull["title"],
            "user": self._user(),
            "body": pull["body"],
            "body_html": None,
            "body_text": None,
            "labels": [],
            "milestone": None,
            "created_at": pull["created_at"],
            "updated_at": _now(),
            "closed_at": pull.get("closed_at"),
            "merged_at": pull.get("merged_at"),
            "merge_commit_sha": pull.get("merge_commit_sha"),
            "assignee": None,
            "assignees": [],
            "requested_reviewers": [],
            "requested_teams": [],
            "head": self._end(pull["head"], pull["head_sha"]),
            "base": self._end(pull["base"], pull["base_sha"]),
            "_links": {"self": {"href": url}, "html": {"href": html}},
            "author_association": "NONE",
            "draft": False,
            "merged": pull.get("merged", False),
            "mergeable": True,
            "rebaseable": True,
            "mergeable_state": "clean",
            "merged_by": self._user() if pull.get("merged") else None,
            "comments": 0,
            "review_comments": 0,
            "maintainer_can_modify": False,
            "commits": 1,
            "additions": 1,
            "deletions": 0,
            "changed_files": 1,
        }

    def _create_pull(self, request: Request, match: re.Match[str]) -> Response:
        data = request.json()
        head, base = data.get("head"), data.get("base")
        if not data.get("title") or not isinstance(head, str) or not isinstance(base, str):
            return Response.json({"message": "title, head and base are required"}, status=422)
        head_sha, base_sha = self._sha_of(head), self._sha_of(base)
        if head_sha is None or base_sha is None:
            return Response.json({"message": "Validation Failed", "errors": [{"field": "head"}]}, status=422)
        if any(p["head"] == head and p["state"] == "open" for p in self.pulls.values()):
            message = f"A pull request already exists for {self.owner}:{head}."
            return Response.json(
                {"message": "Validation Failed", "errors": [{"message": message}]}, status=422
            )
        number = next(self._pull_numbers)
        self.pulls[number] = {
            "number": number,
            "title": data["title"],
            "body": data.get("body"),
            "head": head,
            "base": base,
            "head_sha": head_sha,
            "base_sha": base_sha,
            "state": "open",
            "created_at": _now(),
            "request": data,  # what the client sent (for the test's eyes)
        }
        return Response.json(self._pull_json(self.pulls[number]), status=201)

    def _list_pulls(self, request: Request, match: re.Match[str]) -> Response:
        state, head, base = request.param("state") or "open", request.param("head"), request.param("base")
        found = [
            self._pull_json(p)
            for p in self.pulls.values()
            if (state == "all" or p["state"] == state)
            and (head is None or f"{self.owner}:{p['head']}" == head)
            and (base is None or p["base"] == base)
        ]
        return Response.json(found)

    def _get_pull(self, request: Request, match: re.Match[str]) -> Response:
        pull = self.pulls.get(int(match.group(1)))
        if pull is None:
            return Response.json({"message": "Not Found"}, status=404)
        return Response.json(self._pull_json(pull))

    def _update_pull(self, request: Request, match: re.Match[str]) -> Response:
        pull = self.pulls.get(int(match.group(1)))
        if pull is None:
            return Response.json({"message": "Not Found"}, status=404)
        data = request.json()
        if data.get("state") == "closed" and pull["state"] == "open":
            pull["state"], pull["closed_at"] = "closed", _now()
        return Response.json(self._pull_json(pull))

    # -- what a person does on GitHub, and the webhook GitHub then sends -------------------------------

    def merge(self, number: int, *, by: str = "reviewer") -> dict[str, Any]:
        """Press the merge button: a merge commit of base and head, the base branch moved to it."""
        pull = self.pulls[number]
        assert pull["state"] == "open", f"pull request #{number} is {pull['state']}"
        base_tip = self._git("rev-parse", f"refs/heads/{pull['base']}")
        head_tip = self._git("rev-parse", f"refs/heads/{pull['head']}")
        tree = self._git("merge-tree", "--write-tree", base_tip, head_tip).splitlines()[0]
        message = f"Merge pull request #{number} from {self.owner}/{pull['head']}\n\n{pull['title']}\n"
        merge = self._git("commit-tree", tree, "-p", base_tip, "-p", head_tip, input=message.encode())
        self._git("update-ref", f"refs/heads/{pull['base']}", merge, base_tip)
        pull.update(state="closed", merged=True, merge_commit_sha=merge, closed_at=_now(), merged_at=_now())
        pull["head_sha"] = head_tip
        return self.pull_request_event(number, by=by)

    def close(self, number: int, *, by: str = "reviewer") -> dict[str, Any]:
        """Close it without merging."""
        pull = self.pulls[number]
        pull.update(state="closed", closed_at=_now())
        return self.pull_request_event(number, by=by)

    def pull_request_event(
        self, number: int, *, by: str = "reviewer", action: str = "closed"
    ) -> dict[str, Any]:
        """The `pull_request` webhook payload for the pull request as it stands."""
        body = self._pull_json(self.pulls[number])
        if body["merged"]:
            body["merged_by"] = {**self._user(), "login": by}
        sender = {**self._user(), "login": by, "type": "User"}
        return {
            "action": action,
            "number": number,
            "pull_request": body,
            "repository": {
                **body["base"]["repo"],
                "default_branch": self.pulls[number]["base"],
            },
            "sender": sender,
        }
