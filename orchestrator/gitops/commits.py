"""Which commit the project checkout is at (the identity a release is built and recorded from), and the
checkout's files as they were at a release's commit (what a promotion renders)."""

from __future__ import annotations

import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import git

from orchestrator.errors import OrchestratorError

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


class CommitNotFoundError(OrchestratorError):
    """The commit a release was built from is not in the checkout's repository."""


def in_git(root: Path) -> bool:
    """Whether the project checkout is inside a git repository with at least one commit."""
    return head_commit(root) != UNVERSIONED


@contextmanager
def tree_at(root: Path, commit: str, folders: Sequence[str]) -> Iterator[Path]:
    """`folders` of the project checkout as they were at `commit`, in a temporary folder (removed after).

    Read from git's objects with `git archive`, never from the working tree: uncommitted edits and a
    different branch checked out change nothing of it. The project may be a subfolder of the repository.
    """
    repo = git.Repo(root, search_parent_directories=True)
    top = Path(str(repo.working_tree_dir)).resolve()
    inside = root.resolve().relative_to(top).as_posix()
    treeish = f"{commit}:{inside}" if inside != "." else commit
    try:
        repo.git.rev_parse("--verify", "--quiet", f"{commit}^{{commit}}")
    except git.GitCommandError:
        raise CommitNotFoundError(
            f"commit {commit} is not in the repository at {top}; fetch it, or promote from a checkout "
            "that has it"
        ) from None
    with tempfile.TemporaryDirectory(prefix="orchestrator-tree-") as folder:
        archive = Path(folder) / "tree.tar"
        with archive.open("wb") as out:
            present = [f for f in folders if _has(repo, commit, f if inside == "." else f"{inside}/{f}")]
            if not present:
                raise CommitNotFoundError(
                    f"commit {commit} holds none of {', '.join(folders)} under {inside}"
                )
            repo.archive(out, treeish=treeish, format="tar", path=present)
        target = Path(folder) / "tree"
        target.mkdir()
        with tarfile.open(archive) as tar:
            tar.extractall(target, filter="data")
        yield target


def _has(repo: git.Repo, commit: str, path: str) -> bool:
    try:
        repo.git.cat_file("-e", f"{commit}:{path}")
    except git.GitCommandError:
        return False
    return True
