"""The project as it was at a commit, for a rollout a push or `deploy --commit` asked for.

The server runs from a checkout of the project repository. A push names the commit to deploy; the
checkout may be at another one (older, or newer when pushes come quickly). Rendering the checkout's files
and recording the push's commit would record a release that is not what git holds at that commit, so a
job renders the commit's own tree: `git archive` of it from the checkout's repository (fetched from
`origin` first when the checkout does not have it yet) into `<state>/checkouts/<sha>/`, made once and
reused. When the commit is the checkout's HEAD, the checkout itself is used.

A tree is needed only while a deployment is created from it (the deployment freezes what it rendered), so
trees no one asked for in a day (`UNUSED_SECONDS`, by the folder's modification time, touched on every
use) are removed whenever a new one is made: a server taking pushes all day keeps a day of trees, not every
commit it ever saw. A tree is checked, touched, made and removed under its commit's lock, so a job never
renders from a tree being removed (it makes the tree again).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from orchestrator.config import Project
from orchestrator.errors import ConfigError
from orchestrator.gitops.commits import head_commit
from orchestrator.gitops.refs import ensure_commit, git

UNUSED_SECONDS = 24 * 3600  # a tree not used for this long is removed when another is made

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


class CommitUnavailableError(ConfigError):
    """The commit asked for is neither in the checkout nor at its origin, or cannot be read: bad input."""


def project_at(root: Path, state_dir: Path, commit: str | None) -> tuple[Project, str]:
    """The project at `commit` (None: the checkout's HEAD), and that commit's SHA."""
    head = head_commit(root)
    if commit is None or commit == head:
        return Project(root), head
    if not ensure_commit(root, commit):
        raise CommitUnavailableError(
            f"commit {commit} is not in the checkout at {root} (nor could it be fetched from its origin)"
        )
    folder = state_dir / "checkouts"
    destination = folder / commit
    folder.mkdir(parents=True, exist_ok=True)
    # One extraction per commit: a push of a template queues a job per service, all for this commit.
    made = False
    with _commit_lock(folder, commit):
        if destination.is_dir():
            os.utime(destination)  # used now: not one of the trees a day unused
        else:
            _extract(root, commit, destination)
            made = True
    if made:
        prune_unused(folder, keep=commit)
    return Project(destination), commit


@contextmanager
def _commit_lock(folder: Path, commit: str) -> Iterator[None]:
    """This commit's tree to ourselves: threads of this process, then other processes (workers) of this
    machine. The lock files stay (empty): removing one another process waits on would split the lock."""
    with _locks_guard:
        lock = _locks.setdefault(commit, threading.Lock())
    with lock, open(folder / f".{commit}.lock", "w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        yield


def prune_unused(folder: Path, *, keep: str, now: float | None = None) -> list[str]:
    """Remove the trees under `folder` not used for `UNUSED_SECONDS` (but `keep`'s); their commits."""
    cutoff = (time.time() if now is None else now) - UNUSED_SECONDS
    removed: list[str] = []
    for entry in sorted(folder.iterdir()):
        if entry.name == keep or entry.name.startswith(".") or not entry.is_dir():
            continue
        with _commit_lock(folder, entry.name):
            try:
                if entry.stat().st_mtime >= cutoff:
                    continue
            except OSError:
                continue  # removed meanwhile by another process
            trash = Path(tempfile.mkdtemp(prefix=f".removing-{entry.name[:12]}-", dir=folder))
            try:
                os.rename(entry, trash / entry.name)  # gone at once for readers; deleted below
            except OSError:  # removed meanwhile by another process
                trash.rmdir()
                continue
        shutil.rmtree(trash, ignore_errors=True)
        removed.append(entry.name)
    return removed


def _extract(root: Path, commit: str, destination: Path) -> None:
    """`git archive` of the commit into a staging folder, renamed into place whole."""
    staging = Path(tempfile.mkdtemp(prefix=f".{commit[:12]}-", dir=destination.parent))
    try:
        archive = git(root, "archive", "--format=tar", commit)
        if archive.returncode != 0:
            why = archive.stderr.decode(errors="replace").strip()
            raise CommitUnavailableError(f"cannot read commit {commit} in {root}: {why}")
        tar_path = staging / ".tree.tar"
        tar_path.write_bytes(archive.stdout)
        with tarfile.open(tar_path) as tar:
            tar.extractall(staging, filter="data")
        tar_path.unlink()
        try:
            os.rename(staging, destination)  # atomic: a reader finds the whole tree or none
        except OSError:
            if not destination.is_dir():
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
