"""An environment's GitOps repository: commit a set of files onto a branch, read files back at a commit.

Commits are built with git's plumbing, never in a working tree: the changed files become blobs, a tree is
written from the parent's tree plus those blobs through a private index file, `commit-tree` makes the commit,
and the branch moves with a compare-and-swap (`update-ref <new> <old>`), or a push that the remote refuses
unless it fast-forwards. So any number of processes (and, through the remote, machines) can commit to one
branch at once: whoever loses the race reads the new tip and re-applies only its own files on top of it —
a rebase that cannot conflict, since each commit names the files it owns — and no commit is ever lost or
overwritten. An unchanged set of files makes no commit.

Every repository is used through a bare mirror in the state folder (`<state>/gitops/<name>.git`); the
embedded default has no remote at all: the mirror *is* the repository (`<state>/gitops/default.git`).
Credentials for `https://` come from an environment variable and are handed to git as an HTTP header, so they
are never written to disk, to a URL, or to a message.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import os
import random
import re
import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import OrchestratorError

ZERO = "0" * 40
# A fetch that failed because the branch did not exist yet, while another writer was creating it.
FETCH_ATTEMPTS = 3
PUSH_ATTEMPTS = 12  # each attempt re-reads the tip; ten writers at once settle well within this
_BOILERPLATE = ("Could not read from remote", "Please make sure you have", "and the repository exists")
COMMITTER = ("AddToCloud Orchestrator", "orchestrator@addtocloud.local")


class GitOpsError(OrchestratorError):
    """The GitOps repository could not be read, committed to or pushed to; names the repository."""


@dataclass(frozen=True)
class Author:
    name: str
    email: str


@dataclass(frozen=True)
class CommitResult:
    sha: str  # the commit holding the files: a new one, or the tip when nothing changed
    created: bool  # False: the branch already held exactly these files
    attempts: int  # how many times the commit was built (1 + races lost)


@dataclass(frozen=True)
class LogEntry:
    sha: str
    subject: str
    trailers: dict[str, str]


class GitOpsRepository:
    """One repository and branch, through its bare mirror at `mirror`.

    `remote` is None for the embedded default (the mirror is the repository) or a URL / local path git can
    push to. `token_env` names the variable holding an HTTPS token.
    """

    def __init__(
        self,
        mirror: Path,
        *,
        branch: str = "main",
        remote: str | None = None,
        token_env: str | None = None,
    ) -> None:
        self.mirror = mirror
        self.branch = branch
        self.remote = remote
        self.token_env = token_env
        self.name = remote or str(mirror)

    # --- git -------------------------------------------------------------------------------------------

    def _git(
        self,
        *args: str,
        input: bytes | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[bytes]:
        command = ["git", *self._auth(), "--git-dir", str(self.mirror), *args]
        process = subprocess.run(
            command,
            input=input,
            capture_output=True,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0", **(env or {})},
            check=False,
        )
        if check and process.returncode != 0:
            raise GitOpsError(f"GitOps repository {self.name}: git {args[0]} failed: {self._why(process)}")
        return process

    def _auth(self) -> list[str]:
        if not (self.remote and self.token_env and self.remote.startswith("https://")):
            return []
        token = os.environ.get(self.token_env)
        if not token:
            raise GitOpsError(f"GitOps repository {self.name}: ${self.token_env} (its token) is not set")
        basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        return ["-c", f"http.extraHeader=Authorization: Basic {basic}"]

    def _why(self, process: subprocess.CompletedProcess[bytes]) -> str:
        text = (process.stderr or process.stdout).decode(errors="replace").strip()
        token = os.environ.get(self.token_env or "") if self.token_env else None
        if token:
            text = text.replace(token, "***")
        lines = [line.removeprefix("fatal: ").removeprefix("error: ") for line in text.splitlines() if line]
        # git's closing advice ("Could not read from remote repository. Please make sure...") says nothing
        # the first lines did not; the cause is what comes before it.
        cause = [line for line in lines if not line.startswith(_BOILERPLATE)]
        return "; ".join((cause or lines)[:3]) or f"exit code {process.returncode}"

    # --- set-up ----------------------------------------------------------------------------------------

    def open(self) -> GitOpsRepository:
        """Create the mirror on first use (an empty bare repository pointing at the remote)."""
        if (self.mirror / "HEAD").exists():
            return self
        self.mirror.parent.mkdir(parents=True, exist_ok=True)
        # Made beside its final place and renamed, so two processes creating it at once both end with one.
        scratch = self.mirror.with_name(f".{self.mirror.name}.{os.getpid()}.{random.getrandbits(32):x}")
        process = subprocess.run(
            ["git", "init", "--quiet", "--bare", f"--initial-branch={self.branch}", str(scratch)],
            capture_output=True,
            check=False,
        )
        if process.returncode != 0:
            raise GitOpsError(f"GitOps repository {self.name}: git init failed: {self._why(process)}")
        if self.remote:
            subprocess.run(
                ["git", "--git-dir", str(scratch), "remote", "add", "origin", self.remote],
                capture_output=True,
                check=True,
            )
        try:
            scratch.rename(self.mirror)
        except OSError:
            if not (self.mirror / "HEAD").exists():
                raise
            shutil.rmtree(scratch, ignore_errors=True)
        return self

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        # Processes of one machine share the mirror: one at a time fetches and pushes through it (git's own
        # ref locks would refuse the second instead of waiting). Other machines race through the remote.
        with open(self.mirror / "orchestrator.lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # --- reading ---------------------------------------------------------------------------------------

    @property
    def _ref(self) -> str:
        return f"refs/remotes/origin/{self.branch}" if self.remote else f"refs/heads/{self.branch}"

    def fetch(self) -> None:
        """Bring the remote branch's tip into the mirror (nothing to do without a remote)."""
        if not self.remote:
            return
        refspec = f"+refs/heads/{self.branch}:refs/remotes/origin/{self.branch}"
        for _ in range(FETCH_ATTEMPTS):
            process = self._git("fetch", "--quiet", "--no-tags", "origin", refspec, check=False)
            if process.returncode == 0:
                return
            # An empty remote has no branch yet: the first commit creates it.
            listing = self._git("ls-remote", "--heads", "origin", self.branch, check=False)
            if listing.returncode != 0:
                break
            if not listing.stdout.strip():
                self._git("update-ref", "-d", self._ref, check=False)
                return
            # The branch is there now: another writer created it between the fetch and the listing.
        raise GitOpsError(f"GitOps repository {self.name} is unreachable: {self._why(process)}")

    def tip(self) -> str | None:
        process = self._git("rev-parse", "--verify", "--quiet", f"{self._ref}^{{commit}}", check=False)
        return process.stdout.decode().strip() or None

    def _tip_and_tree(self) -> tuple[str | None, str | None]:
        """The branch's tip and its tree, in one git process (both None before the first commit)."""
        ref = self._ref
        process = self._git("rev-parse", "--quiet", f"{ref}^{{commit}}", f"{ref}^{{tree}}", check=False)
        if process.returncode != 0:
            return None, None
        commit, tree = process.stdout.decode().split()
        return commit, tree

    def read(self, commit: str, path: str) -> bytes | None:
        """A file's content at `commit`; None when the commit has no such file."""
        process = self._git("cat-file", "blob", f"{commit}:{path}", check=False)
        return process.stdout if process.returncode == 0 else None

    def files(self, commit: str, prefix: str) -> dict[str, bytes]:
        """Every file under `prefix` at `commit`, by path."""
        listing = self._git("ls-tree", "-r", "-z", "--full-tree", commit, "--", prefix).stdout
        paths = [entry.split(b"\t", 1)[1].decode() for entry in listing.split(b"\0") if entry]
        if not paths:
            return {}
        # One process for every blob: `cat-file --batch` answers "<sha> blob <size>\n<content>\n" per line.
        batch = self._git("cat-file", "--batch", input="".join(f"{commit}:{p}\n" for p in paths).encode())
        found: dict[str, bytes] = {}
        data, at = batch.stdout, 0
        for path in paths:
            header_end = data.index(b"\n", at)
            size = int(data[at:header_end].split()[2])
            found[path] = data[header_end + 1 : header_end + 1 + size]
            at = header_end + 1 + size + 1
        return found

    def log(self, *, limit: int = 20, path: str | None = None) -> list[LogEntry]:
        tip = self.tip()
        if tip is None:
            return []
        fmt = "%H%x1f%s%x1f%(trailers:unfold,separator=%x1e)%x1d"
        args = ["log", f"--format={fmt}", f"-n{limit}", tip]
        if path:
            args += ["--", path]
        entries = []
        for record in self._git(*args).stdout.decode().split("\x1d"):
            record = record.strip("\n")
            if not record:
                continue
            sha, subject, trailers = record.split("\x1f")
            entries.append(LogEntry(sha, subject, _parse_trailers(trailers.split("\x1e"))))
        return entries

    # --- writing ---------------------------------------------------------------------------------------

    def commit(
        self,
        files: Mapping[str, bytes | None],
        message: str,
        *,
        author: Author,
        owns: str | None = None,
    ) -> CommitResult:
        """Commit `files` (path -> content; None deletes it) onto the branch, pushing when there is a remote.

        `owns` is a pattern (fnmatch, git pathspec glob) of paths this change owns: files matching it that
        are not in `files` are deleted, so a cluster leaving an environment leaves its file behind no more.
        A lost race (another writer moved the branch) re-applies these files on the new tip, up to
        PUSH_ATTEMPTS times; GitOpsError names the repository and git's reason when it cannot.
        """
        self.open()
        blobs = self._blobs({path: content for path, content in files.items() if content is not None})
        with self._locked():
            for attempt in range(1, PUSH_ATTEMPTS + 1):
                self.fetch()
                parent, parent_tree = self._tip_and_tree()
                tree = self._tree(parent, blobs, files, owns)
                if parent is not None and tree == parent_tree:
                    return CommitResult(parent, created=False, attempts=attempt)
                sha = self._commit_tree(tree, parent, message, author)
                if self._publish(sha, parent):
                    return CommitResult(sha, created=True, attempts=attempt)
                time.sleep(random.uniform(0.005, 0.05) * attempt)  # someone else won this round
        raise GitOpsError(
            f"GitOps repository {self.name}: the branch {self.branch} kept moving; "
            f"{PUSH_ATTEMPTS} attempts to commit on its tip all lost the race"
        )

    def push_branch(
        self,
        head: str,
        files: Mapping[str, bytes | None],
        message: str,
        *,
        author: Author,
        owns: str | None = None,
    ) -> CommitResult:
        """Commit `files` on top of the branch's tip as the new branch `head` of the remote, leaving the
        branch itself alone: what a pull request proposes. `created` is False (and nothing is pushed) when
        the branch already holds exactly these files. `head` belongs to one deployment, so a push that
        repeats it (a driver taking over) replaces it."""
        if not self.remote:
            raise GitOpsError(f"GitOps repository {self.name} has no remote to push a branch {head} to")
        self.open()
        blobs = self._blobs({path: content for path, content in files.items() if content is not None})
        with self._locked():
            self.fetch()
            parent, parent_tree = self._tip_and_tree()
            tree = self._tree(parent, blobs, files, owns)
            if parent is not None and tree == parent_tree:
                return CommitResult(parent, created=False, attempts=1)
            sha = self._commit_tree(tree, parent, message, author)
            self._git("push", "--quiet", "--porcelain", "--force", "origin", f"{sha}:refs/heads/{head}")
        return CommitResult(sha, created=True, attempts=1)

    def _blobs(self, contents: Mapping[str, bytes]) -> dict[str, str]:
        """Write every content as a blob with one git process (a process per file costs 900 for an estate)."""
        if not contents:
            return {}
        scratch = self.mirror / f"blobs.{os.getpid()}.{random.getrandbits(32):x}"
        scratch.mkdir()
        try:
            names = []
            for number, content in enumerate(contents.values()):
                (scratch / str(number)).write_bytes(content)
                names.append(str(scratch / str(number)))
            shas = self._git("hash-object", "-w", "--stdin-paths", input="\n".join(names).encode()).stdout
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return dict(zip(contents, shas.decode().split(), strict=True))

    def _tree(
        self,
        parent: str | None,
        blobs: Mapping[str, str],
        files: Mapping[str, bytes | None],
        owns: str | None,
    ) -> str:
        index = self.mirror / f"index.{os.getpid()}.{random.getrandbits(32):x}"
        env = {"GIT_INDEX_FILE": str(index)}
        try:
            if parent is not None:
                self._git("read-tree", parent, env=env)
            removed = [path for path, content in files.items() if content is None]
            if owns and parent is not None:
                owned = self._git("ls-files", "-z", "--", f":(glob){owns}", env=env).stdout.decode()
                removed += [path for path in owned.split("\0") if path and path not in files]
            lines = [f"0 {ZERO}\t{path}\n" for path in removed]  # mode 0: remove the entry
            lines += [f"100644 {sha}\t{path}\n" for path, sha in blobs.items()]
            if lines:
                self._git("update-index", "--index-info", input="".join(lines).encode(), env=env)
            return self._git("write-tree", env=env).stdout.decode().strip()
        finally:
            index.unlink(missing_ok=True)

    def _commit_tree(self, tree: str, parent: str | None, message: str, author: Author) -> str:
        env = {
            "GIT_AUTHOR_NAME": author.name,
            "GIT_AUTHOR_EMAIL": author.email,
            "GIT_COMMITTER_NAME": COMMITTER[0],
            "GIT_COMMITTER_EMAIL": COMMITTER[1],
        }
        args = ["commit-tree", tree, *(["-p", parent] if parent else [])]
        return self._git(*args, input=message.encode(), env=env).stdout.decode().strip()

    def _publish(self, sha: str, parent: str | None) -> bool:
        """Move the branch from `parent` to `sha`; False when someone moved it first."""
        if not self.remote:
            process = self._git("update-ref", f"refs/heads/{self.branch}", sha, parent or ZERO, check=False)
            return process.returncode == 0
        process = self._git(
            "push", "--quiet", "--porcelain", "origin", f"{sha}:refs/heads/{self.branch}", check=False
        )
        if process.returncode == 0:
            self._git("update-ref", self._ref, sha)
            return True
        output = (process.stdout + process.stderr).decode(errors="replace")
        if re.search(r"\[rejected\]|non-fast-forward|fetch first|cannot lock ref|stale info", output):
            return False
        raise GitOpsError(f"GitOps repository {self.name} refused the push: {self._why(process)}")


def _parse_trailers(lines: list[str]) -> dict[str, str]:
    trailers: dict[str, str] = {}
    for line in lines:
        key, sep, value = line.partition(":")
        if sep and key.strip():
            trailers[key.strip()] = value.strip()
    return trailers


def mirror_name(remote: str) -> str:
    """A folder name for a remote's mirror: readable, and unique per URL."""
    tail = re.sub(r"[^A-Za-z0-9._-]+", "-", remote.rstrip("/").rsplit("/", 1)[-1]).strip("-.") or "repo"
    return f"{tail.removesuffix('.git')}-{hashlib.sha256(remote.encode()).hexdigest()[:10]}.git"
