"""Which commit the project checkout is at: the identity a release is built and recorded from."""

from __future__ import annotations

from pathlib import Path

import git

UNVERSIONED = "0" * 40


def head_commit(root: Path) -> str:
    """The checkout's HEAD commit SHA; all zeros when the folder is not a git repository or has no commit."""
    try:
        repo = git.Repo(root, search_parent_directories=True)
        return str(repo.head.commit.hexsha)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, ValueError):
        return UNVERSIONED
