"""Webhook test helpers: an estate in a git repository, GitHub-shaped push payloads, signed deliveries."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import httpx

from orchestrator.server.signatures import sign
from tests.helpers import copy_estate
from tests.integration.rollout_fixtures import estate_with_strategy

SECRET = b"webhook-secret-that-must-never-be-logged-7d1f"
REPOSITORY = "addtocloud/platform"


def git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def git_estate(root: Path, *, strategy: str | None = None, promotion: str = "[local]") -> Path:
    """The reference estate, its pipelines promoting to `promotion`, committed in a fresh git repository."""
    if strategy is None:
        copy_estate(root)
    else:
        estate_with_strategy(root, strategy)
    for service in ("api", "frontend"):
        path = root / "pipelines" / f"{service}.yaml"
        text = path.read_text()
        path.write_text(
            "\n".join(
                f"promotion: {promotion}" if line.startswith("promotion:") else line
                for line in text.splitlines()
            )
            + "\n"
        )
    (root / "services" / "api").mkdir(parents=True)
    (root / "services" / "api" / "VERSION").write_text("0\n")
    git(root, "init", "--quiet", "--initial-branch=main")
    git(root, "add", "-A")
    git(root, "commit", "--quiet", "-m", "estate")
    return root


def commit_change(root: Path, path: str, text: str) -> str:
    """Write `text` to `path` in the estate and commit it; the new commit's SHA."""
    (root / path).parent.mkdir(parents=True, exist_ok=True)
    (root / path).write_text(text)
    git(root, "add", "-A")
    git(root, "commit", "--quiet", "-m", f"change {path}")
    return git(root, "rev-parse", "HEAD")


def push_payload(
    after: str, *, paths: list[str], repository: str = REPOSITORY, ref: str = "refs/heads/main"
) -> dict[str, Any]:
    return {
        "ref": ref,
        "before": "1" * 40,
        "after": after,
        "repository": {"full_name": repository, "default_branch": "main"},
        "commits": [{"id": after, "added": [], "modified": paths, "removed": []}],
        "head_commit": {"id": after, "added": [], "modified": paths, "removed": []},
    }


def deliver(
    base: str,
    payload: dict[str, Any] | bytes,
    *,
    event: str = "push",
    delivery: str | None = None,
    secret: bytes = SECRET,
    signature: str | None = None,
) -> httpx.Response:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-Hub-Signature-256": signature if signature is not None else sign(secret, body),
    }
    return httpx.post(f"{base}/webhooks/github", content=body, headers=headers, timeout=30)


def workflow_run_payload(
    sha: str,
    *,
    conclusion: str = "success",
    branch: str = "main",
    head_repository: str = REPOSITORY,
    action: str = "completed",
) -> dict[str, Any]:
    return {
        "action": action,
        "workflow_run": {
            "name": "ci",
            "event": "push",
            "head_sha": sha,
            "head_branch": branch,
            "status": "completed",
            "conclusion": conclusion,
            "head_repository": {"full_name": head_repository},
        },
        "repository": {"full_name": REPOSITORY, "default_branch": "main"},
    }


def release_payload(tag: str, *, action: str = "published") -> dict[str, Any]:
    return {
        "action": action,
        "release": {"tag_name": tag, "target_commitish": "main", "draft": False, "prerelease": False},
        "repository": {"full_name": REPOSITORY, "default_branch": "main"},
    }
