"""A deployment's desired state, committed to its environment's GitOps repository and read back from it.

The engine commits a deployment's rendered manifests before it touches any cluster (after an approval, when
one is required), then rolls out what it reads back from that commit, validated like a rendered set: the
clusters run exactly what git holds, and a commit that cannot be made or pushed fails the deployment with
nothing applied. `DesiredState` is the engine's view of it; `GitDesiredState` is git, and the state-machine
tests use an in-memory double.

In pull-request mode (`gitops.mode: pull-request`) the engine proposes instead of committing: the same files
and message, committed on top of the branch's tip as a branch of their own (`pull_request_branch`) and a
pull request onto the environment's branch, opened through github3.py. What rolls out is then read from the
merge commit (`read`), so a change made in review is what the clusters run.
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import github3

from orchestrator.config import Environment
from orchestrator.config.environment import GitHubApi, GitOpsConfig
from orchestrator.github.api import client as github_client
from orchestrator.github.pulls import PullRequest, close_pull_request, open_pull_request
from orchestrator.gitops.manifests import CommittedManifestError, dump, load, manifest_path, service_glob
from orchestrator.gitops.repository import Author, GitOpsError, GitOpsRepository, mirror_name
from orchestrator.render.contract import TemplateContractError, check_contract
from orchestrator.render.engine import is_emulated
from orchestrator.render.manifests import RenderedSet
from orchestrator.render.validate import validate_manifest


@dataclass(frozen=True)
class Change:
    """What one deployment commits: its sets (one per cluster), and what the commit message names."""

    deployment_id: uuid.UUID
    kind: str  # deploy, promote, rollback
    service: str
    environment: str
    release_id: uuid.UUID
    source_commit: str
    image: str
    image_digest: str | None
    actor: str | None
    sets: Sequence[RenderedSet]
    undoes: uuid.UUID | None = None  # rollback: the deployment it undoes
    source_environment: str | None = None  # promote: where the release Succeeded
    restores: str | None = None  # rollback: the commit whose files it brings back
    reverts: str | None = None  # rollback: the commit of the deployment it undoes


@dataclass(frozen=True)
class Committed:
    sha: str
    created: bool  # False: the repository already held exactly this state
    sets: list[RenderedSet]  # the plan's sets with the objects as read back from the commit


@dataclass(frozen=True)
class Proposed:
    """Pull-request mode: the change is a pull request waiting for its merge."""

    pull_request: PullRequest
    files: list[str]  # the files it changes, as committed on its branch


class DesiredState(Protocol):
    def commit(self, environment: Environment, change: Change) -> Committed: ...

    def propose(self, environment: Environment, change: Change) -> Proposed | Committed:
        """A pull request of the change (or Committed: the branch already holds exactly this)."""
        ...

    def withdraw(self, environment: Environment, pull_request: PullRequest) -> None:
        """Close a pull request whose deployment will not roll out (aborted)."""
        ...

    def read(
        self, environment: Environment, commit: str, sets: Sequence[RenderedSet]
    ) -> list[RenderedSet]: ...


def message(change: Change) -> str:
    """The commit message: a subject people scan, a sentence, and trailers that tools parse. A rollback's
    reads as a revert (`Revert …`, like `git revert`'s), naming what it undoes and the commit it restores."""
    short = str(change.release_id)[:8]
    by = change.actor or "the local login"
    trailers = {
        "Deployment-Id": str(change.deployment_id),
        "Release": str(change.release_id),
        "Image-Digest": change.image_digest or "none",
        "Image": change.image,
        "Service": change.service,
        "Environment": change.environment,
        "Source-Commit": change.source_commit,
        "Kind": change.kind,
    }
    if change.undoes is not None:
        trailers["Undoes-Deployment"] = str(change.undoes)
    if change.restores is not None:
        trailers["Restores-Commit"] = change.restores
    clusters = ", ".join(s.cluster for s in change.sets)
    sentence = (
        f"Deployment {change.deployment_id} by {by}: {change.service} at commit {change.source_commit[:12]}, "
        f"image {change.image}, to {clusters}."
    )
    if change.kind == "rollback":
        subject = f"Revert {change.service} in {change.environment} to release {short}"
        undone = f"deployment {change.undoes}" + (f" (commit {change.reverts})" if change.reverts else "")
        sentence = (
            f"This reverts {undone}, restoring the files of commit {change.restores or 'unknown'}.\n\n"
            + sentence
        )
    elif change.kind == "promote":
        subject = (
            f"{change.service}: promote release {short} from {change.source_environment} to "
            f"{change.environment}"
        )
    else:
        subject = f"{change.service}: {change.kind} release {short} to {change.environment}"
    return f"{subject}\n\n{sentence}\n\n" + "".join(f"{k}: {v}\n" for k, v in trailers.items())


def pull_request_branch(change: Change) -> str:
    """The branch a deployment's pull request comes from: one per deployment, named so people see whose."""
    return f"orchestrator/{change.environment}/{change.service}-{change.deployment_id}"


def pull_request_body(change: Change, files: Sequence[str], branch: str) -> str:
    """What reviewers read: the commit message's sentence, what merging does, the files and the trailers."""
    text = message(change)
    _subject, _, rest = text.partition("\n\n")
    sentence, _, trailers = rest.rpartition("\n\n")
    listed = "\n".join(f"- `{path}`" for path in files)
    return (
        f"{sentence}\n\n"
        f"Merging this pull request onto `{branch}` rolls the merged files out to {change.environment} "
        f"(deployment `{change.deployment_id}`); closing it without merging cancels the deployment, with "
        "nothing applied.\n\n"
        f"Files:\n{listed}\n\n"
        f"```\n{trailers.strip()}\n```\n"
    )


def folder(config: GitOpsConfig, environment: str) -> str:
    return config.path if config.path is not None else environment


class GitDesiredState:
    """Desired state in git: each environment's repository, or the embedded default in the state folder."""

    def __init__(self, state_dir: Path, project_root: Path) -> None:
        self.state_dir = state_dir
        self.project_root = project_root

    def repository(self, environment: Environment) -> GitOpsRepository:
        config = environment.gitops
        base = self.state_dir / "gitops"
        if config.repository is None:
            return GitOpsRepository(base / "default.git", branch=config.branch)
        remote = config.repository
        if "://" not in remote and not remote.startswith("git@"):
            remote = str((self.project_root / remote).resolve())  # a local path, relative to the checkout
        return GitOpsRepository(
            base / mirror_name(remote), branch=config.branch, remote=remote, token_env=config.token_env
        )

    def commit(self, environment: Environment, change: Change) -> Committed:
        repository = self.repository(environment)
        prefix = folder(environment.gitops, environment.name)
        files = self._files(prefix, change)
        result = repository.commit(
            files, message(change), author=_author(change), owns=service_glob(prefix, change.service)
        )
        committed = repository.files(result.sha, prefix)
        return Committed(result.sha, result.created, read_back(committed, prefix, environment, change.sets))

    def propose(self, environment: Environment, change: Change) -> Proposed | Committed:
        """Push the change as a branch on top of the environment's branch and open a pull request of it
        (pull-request mode); Committed (nothing pushed or opened) when the branch already holds it."""
        config = environment.gitops.github
        if config is None:  # the configuration refuses pull-request mode without it
            raise GitOpsError(f"environment {environment.name}: gitops.github is not configured")
        repository = self.repository(environment)
        prefix = folder(environment.gitops, environment.name)
        files = self._files(prefix, change)
        head = pull_request_branch(change)
        text = message(change)
        result = repository.push_branch(
            head, files, text, author=_author(change), owns=service_glob(prefix, change.service)
        )
        if not result.created:
            committed = repository.files(result.sha, prefix)
            return Committed(result.sha, False, read_back(committed, prefix, environment, change.sets))
        gh = self._github(config)
        opened = open_pull_request(
            gh,
            config.repository,
            head=head,
            base=environment.gitops.branch,
            title=text.partition("\n")[0],
            body=pull_request_body(change, sorted(files), environment.gitops.branch),
        )
        return Proposed(opened, sorted(files))

    def withdraw(self, environment: Environment, pull_request: PullRequest) -> None:
        config = environment.gitops.github
        if config is None:
            raise GitOpsError(f"environment {environment.name}: gitops.github is not configured")
        close_pull_request(self._github(config), pull_request.repository, pull_request.number)

    def _github(self, config: GitHubApi) -> github3.GitHub:
        token = os.environ.get(config.token_env)
        if not token:
            raise GitOpsError(f"gitops.github: ${config.token_env} (the GitHub token) is not set")
        ca = (self.project_root / config.ca_bundle).resolve() if config.ca_bundle else None
        return github_client(config.api_url, token, ca_bundle=ca)

    def _files(self, prefix: str, change: Change) -> dict[str, bytes | None]:
        return {manifest_path(prefix, s.cluster, change.service): dump(s.objects) for s in change.sets}

    def read(self, environment: Environment, commit: str, sets: Sequence[RenderedSet]) -> list[RenderedSet]:
        """The sets as held by `commit` (what a rollback or promotion rolls out), validated."""
        repository = self.repository(environment).open()
        repository.fetch()
        prefix = folder(environment.gitops, environment.name)
        return read_back(repository.files(commit, prefix), prefix, environment, sets)


def _author(change: Change) -> Author:
    # The person behind the deployment is the commit's author; the orchestrator is its committer.
    email = change.actor if change.actor and "@" in change.actor else "local@localhost"
    return Author(change.actor or "local", email)


def read_back(
    files: Mapping[str, bytes], prefix: str, environment: Environment, sets: Sequence[RenderedSet]
) -> list[RenderedSet]:
    """Each set with its objects replaced by the committed file's, checked as the renderer checks a set: the
    schemas and the template contract. A file missing, not YAML objects, or breaking either is refused,
    naming the file: nothing from it is applied."""
    out = []
    for rendered in sets:
        path = manifest_path(prefix, rendered.cluster, rendered.service)
        content = files.get(path)
        if content is None:
            raise CommittedManifestError(f"{path}: the commit has no desired state for {rendered.cluster}")
        objects = load(content, where=path)
        problems = [f"{path}: {v}" for obj in objects for v in validate_manifest(obj)]
        if problems:
            raise CommittedManifestError("; ".join(problems))
        known = {c.name: c for c in environment.clusters}
        cluster = known.get(rendered.cluster)  # a cluster since removed from the file is not emulated
        broken = check_contract(
            objects,
            {id(obj): path for obj in objects},
            service=rendered.service,
            version=rendered.version,
            emulated=cluster is not None and is_emulated(cluster),
            templates=[path],
        )
        if broken:
            raise TemplateContractError(broken, service=rendered.service, where=path)
        out.append(dataclasses.replace(rendered, objects=objects))
    return out
