"""Which commit the project checkout is at: the identity a release is built and recorded from."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import git

UNVERSIONED = "0" * 40


def commit_time(root: Path, sha: str) -> datetime | None:
    """When `sha` was committed (its committer date, in UTC); None outside a repository or for no commit."""
    if sha == UNVERSIONED:
        return None
    try:
        repo = git.Repo(root, search_parent_directories=True)
        return repo.commit(sha).committed_datetime.astimezone(UTC)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, git.BadName, ValueError):
        return None


def head_commit(root: Path) -> str:
    """The checkout's HEAD commit SHA; all zeros when the folder is not a git repository or has no commit."""
    try:
        repo = git.Repo(root, search_parent_directories=True)
        return str(repo.head.commit.hexsha)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, ValueError):
        return UNVERSIONED
