"""The commit being built: its SHA, the semver tags on it, where its source lives, and its files.

The image is built from the commit's own tree (`git archive`), never from the working folder, so an image
tagged with a commit holds exactly that commit: uncommitted edits cannot leak into a "release".
"""

from __future__ import annotations

import io
import os
import re
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import git

from orchestrator.errors import ConfigError, OrchestratorError
from orchestrator.logs import get_logger

log = get_logger(__name__)

SHORT_SHA_LENGTH = 7
_FULL_SHA = re.compile(r"^[0-9a-f]{40}$")
# Semantic Versioning 2.0.0, with the customary leading "v" allowed.
_SEMVER = re.compile(
    r"^v?(?P<core>(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*))"
    r"(?:-(?P<pre>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+(?P<build>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$"
)


@dataclass(frozen=True)
class SourceRevision:
    """One commit of the project, as the image's tags and labels describe it."""

    sha: str
    versions: tuple[str, ...] = ()  # semver of the git tags on the commit, without the "v"
    source_url: str | None = None
    repo_root: Path | None = None  # None: not a git checkout (the working folder is built as it is)
    dirty_paths: tuple[str, ...] = ()

    @property
    def short_sha(self) -> str:
        return self.sha[:SHORT_SHA_LENGTH]

    @property
    def version(self) -> str:
        """The release version: the highest semver tag on the commit, else the short SHA."""
        return self.versions[0] if self.versions else self.short_sha


def semver_of(tag: str) -> str | None:
    """`v1.2.3` → `1.2.3`; None for a tag that is not a semantic version."""
    match = _SEMVER.match(tag)
    return tag[1:] if match and tag.startswith("v") else (tag if match else None)


def _semver_key(version: str) -> tuple[tuple[int, ...], int, str]:
    match = _SEMVER.match(version)
    assert match is not None
    core = tuple(int(part) for part in match.group("core").split("."))
    # A release sorts above its pre-releases.
    return core, 0 if match.group("pre") else 1, match.group("pre") or ""


def resolve_revision(project_root: Path, commit: str | None) -> SourceRevision:
    """The commit to build: `commit` (any revision git understands) or HEAD of the checkout."""
    try:
        repo = git.Repo(project_root, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return _outside_git(project_root, commit)
    try:
        # rev-parse --verify fails for a SHA that merely looks right; repo.commit() alone would not check.
        full = repo.git.rev_parse("--verify", "--quiet", f"{commit or 'HEAD'}^{{commit}}")
        resolved = repo.commit(full)
    except (git.BadName, git.GitCommandError, ValueError) as exc:
        what = f"commit {commit!r}" if commit else "HEAD (the repository has no commits yet)"
        raise ConfigError(f"{what} is not a commit of the git repository at {repo.working_dir}") from exc
    sha = resolved.hexsha
    versions = sorted(
        {v for tag in repo.tags if tag.commit.hexsha == sha and (v := semver_of(tag.name)) is not None},
        key=_semver_key,
        reverse=True,
    )
    root = Path(repo.working_dir)
    return SourceRevision(
        sha=sha,
        versions=tuple(versions),
        source_url=_source_url(repo),
        repo_root=root,
        dirty_paths=_dirty_paths(repo) if resolved == repo.head.commit else (),
    )


def _outside_git(project_root: Path, commit: str | None) -> SourceRevision:
    if commit is None:
        raise ConfigError(
            f"{project_root} is not in a git repository, so the commit to build is unknown; "
            "run inside a checkout or give --commit SHA"
        )
    if not _FULL_SHA.match(commit):
        raise ConfigError(
            f"--commit {commit!r}: outside a git checkout give the full 40-character commit SHA"
        )
    return SourceRevision(sha=commit, source_url=_source_url_from_environment())


def _dirty_paths(repo: git.Repo) -> tuple[str, ...]:
    try:
        changed = {d.a_path for d in repo.index.diff(None) if d.a_path} | set(repo.untracked_files)
        return tuple(sorted(changed))
    except git.GitCommandError:
        return ()


def _source_url(repo: git.Repo) -> str | None:
    try:
        remote = repo.remote("origin")
        urls = list(remote.urls)
    except (ValueError, git.GitCommandError):
        urls = []
    if urls:
        return public_url(urls[0])
    return _source_url_from_environment()


def _source_url_from_environment() -> str | None:
    # GitHub Actions names the repository even in a checkout without an origin remote.
    server = os.environ.get("GITHUB_SERVER_URL")
    repository = os.environ.get("GITHUB_REPOSITORY")
    if server and repository:
        return f"{server.rstrip('/')}/{repository}"
    return None


def public_url(remote: str) -> str:
    """A remote as a browsable URL without credentials: `git@github.com:o/r.git` → `https://github.com/o/r`."""
    url = remote.strip()
    scp = re.match(r"^(?:[\w.-]+@)?(?P<host>[\w.-]+):(?P<path>[^/].*)$", url)
    if scp and "://" not in url:
        url = f"https://{scp.group('host')}/{scp.group('path')}"
    url = re.sub(r"^(ssh|git)://(?:[^@/]+@)?", "https://", url)
    url = re.sub(r"^(https?://)[^@/]+@", r"\1", url)  # drop user:token@
    return url.removesuffix(".git").rstrip("/")


@contextmanager
def checkout_context(revision: SourceRevision, project_root: Path, context: str) -> Iterator[Path]:
    """The build context folder as it is in the commit, in a temporary folder removed afterwards."""
    context_path = (project_root / context).resolve()
    if revision.repo_root is None:
        if not context_path.is_dir():
            raise OrchestratorError(f"the build context {context_path} does not exist")
        yield context_path
        return
    repo_root = revision.repo_root.resolve()
    try:
        relative = context_path.relative_to(repo_root).as_posix()
    except ValueError:
        raise ConfigError(
            f"the build context {context_path} is outside the git repository {repo_root}"
        ) from None
    relative = "" if relative == "." else relative
    dirty = [p for p in revision.dirty_paths if not relative or p == relative or p.startswith(relative + "/")]
    if dirty:
        log.warning(
            "uncommitted changes are not built; the image holds the commit",
            commit=revision.short_sha,
            paths=dirty[:10],
        )
    repo = git.Repo(repo_root)
    buffer = io.BytesIO()
    try:
        if relative:
            repo.archive(buffer, revision.sha, path=[relative], format="tar")
        else:
            repo.archive(buffer, revision.sha, format="tar")
    except git.GitCommandError as exc:
        raise OrchestratorError(
            f"the build context {relative or '.'} does not exist in commit {revision.short_sha}"
        ) from exc
    with tempfile.TemporaryDirectory(prefix="orchestrator-build-") as folder:
        buffer.seek(0)
        with tarfile.open(fileobj=buffer, mode="r:") as archive:
            archive.extractall(folder, filter="tar")
        yield Path(folder) / relative if relative else Path(folder)


def build_time() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)
