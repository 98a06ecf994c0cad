"""What the server (and `deploy --commit`) asks of a checkout's git: a commit fetched when missing, a tag's
commit, the paths two commits differ by.

The server runs from a checkout of the project repository that may lag behind GitHub: a webhook can name a
commit or a tag the checkout has not fetched yet, so each of these fetches exactly what it needs from
`origin` (when the checkout has one) before answering. Every git call has a deadline: a webhook is answered
within seconds, and GitHub gives up on a delivery after ten.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

FETCH_SECONDS = 8.0  # a fetch of one commit or one tag; past it the event is answered as not found


def git(root: Path, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(["git", *args], returncode=124, stdout=b"", stderr=b"timed out")


def has_origin(root: Path) -> bool:
    return git(root, "remote", "get-url", "origin").returncode == 0


def has_commit(root: Path, sha: str) -> bool:
    return git(root, "cat-file", "-e", f"{sha}^{{commit}}").returncode == 0


def ensure_commit(root: Path, sha: str, *, timeout: float = 120.0) -> bool:
    """Whether the checkout has the commit, fetching it from `origin` first when it does not."""
    if has_commit(root, sha):
        return True
    if has_origin(root):
        git(root, "fetch", "--quiet", "origin", sha, timeout=timeout)
    return has_commit(root, sha)


def valid_tag_name(root: Path, tag: str) -> bool:
    """A name git accepts for a tag (so it is passed on as `refs/tags/<tag>`, never read as an option)."""
    return bool(tag) and git(root, "check-ref-format", f"refs/tags/{tag}").returncode == 0


def tag_commit(root: Path, tag: str) -> str | None:
    """The commit the tag points to (through an annotated tag's object), fetching the tag from `origin` when
    the checkout lacks it; None when neither has it."""
    ref = f"refs/tags/{tag}"

    def resolve() -> str | None:
        done = git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
        return (done.stdout.decode().strip() or None) if done.returncode == 0 else None

    found = resolve()
    if found is None and has_origin(root):
        git(root, "fetch", "--quiet", "--no-tags", "origin", f"+{ref}:{ref}", timeout=FETCH_SECONDS)
        found = resolve()
    return found


def changed_between(root: Path, base: str, head: str) -> list[str] | None:
    """The paths that differ between two commits of the checkout (None: git could not compare them)."""
    done = git(root, "diff", "--name-only", "--no-renames", base, head, "--")
    if done.returncode != 0:
        return None
    return [line for line in done.stdout.decode(errors="replace").splitlines() if line]
