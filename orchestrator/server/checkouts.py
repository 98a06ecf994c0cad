"""The project as it was at a commit, for a rollout a push asked for.

The server runs from a checkout of the project repository. A push names the commit to deploy; the
checkout may be at another one (older, or newer when pushes come quickly). Rendering the checkout's files
and recording the push's commit would record a release that is not what git holds at that commit, so a
job renders the commit's own tree: `git archive` of it from the checkout's repository (fetched from
`origin` first when the checkout does not have it yet) into `<state>/checkouts/<sha>/`, made once and
reused. When the commit is the checkout's HEAD, the checkout itself is used.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tarfile
import tempfile
import threading
from pathlib import Path

from orchestrator.config import Project
from orchestrator.errors import OrchestratorError
from orchestrator.gitops.commits import head_commit
from orchestrator.server.git_refs import ensure_commit, git

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


class CommitUnavailableError(OrchestratorError):
    pass


def project_at(root: Path, state_dir: Path, commit: str | None) -> tuple[Project, str]:
    """The project at `commit` (None: the checkout's HEAD), and that commit's SHA."""
    head = head_commit(root)
    if commit is None or commit == head:
        return Project(root), head
    if not ensure_commit(root, commit):
        raise CommitUnavailableError(
            f"commit {commit} is not in the checkout at {root} (nor could it be fetched from its origin)"
        )
    destination = state_dir / "checkouts" / commit
    if not destination.is_dir():
        destination.parent.mkdir(parents=True, exist_ok=True)
        # One extraction per commit: a push of a template queues a job per service, all for this commit.
        with _locks_guard:
            lock = _locks.setdefault(commit, threading.Lock())
        with lock, open(destination.parent / f".{commit}.lock", "w") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)  # other processes (workers) of this machine
            if not destination.is_dir():
                _extract(root, commit, destination)
    return Project(destination), commit


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
