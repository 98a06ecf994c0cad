"""What GitHub's `release` and `workflow_run` events ask for (a `push` is read in `webhooks.py`).

- **release** (action `published`): the release's tag names a commit (resolved in the server's checkout,
  the tag fetched from `origin` when the checkout lacks it). Each orchestrator release recorded at that
  commit moves one environment on along each of its service's promotion paths — to the environment after
  the furthest one it Succeeded in, Kargo-style (`promotion.next_steps`) — as a promotion the job makes
  with the promotion code `promote` uses. Where that furthest environment is rolling the release out
  still, the promotion is queued and its job waits for that rollout to Succeed. A tag the checkout and its
  origin do not know, or a commit no release of any service Succeeded at or is rolling out, is ignored
  with the reason.
- **workflow_run** (action `completed`, conclusion `success`): the run's head commit, on the default branch
  and from the configured repository (not a fork's branch of the same name), deploys as a push's commit
  does — the build recorded for it, else the environment's image — to the first environment of each
  service's promotion paths. The run carries no changed paths, so git says which services changed: those
  whose files differ between that commit and the one the environment runs or is rolling out (a service
  never deployed there counts as changed; one already at that commit is left alone).

Both are decided when the delivery arrives, from the checkout's configuration, its git and the store.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from orchestrator.gitops import refs
from orchestrator.gitops.commits import UNVERSIONED
from orchestrator.rollout.promotion import next_steps
from orchestrator.server.catalog import Catalog
from orchestrator.server.changes import services_changed
from orchestrator.server.decision import Decision, Wanted, first_environments
from orchestrator.store import repository as repo
from orchestrator.store.models import ACTIVE_PHASES, Phase

RELEASE = "release"
WORKFLOW_RUN = "workflow_run"
SHA = re.compile(r"^[0-9a-f]{40}$")
# What an environment runs or is getting: a new run of the same commit would only repeat it.
CURRENT_PHASES = (*ACTIVE_PHASES, Phase.SUCCEEDED)


def _text(mapping: object, key: str) -> str | None:
    value = mapping.get(key) if isinstance(mapping, dict) else None
    return value if isinstance(value, str) else None


def decide_release(
    root: Path,
    sessions: sessionmaker[Session],
    catalog: Catalog,
    payload: dict[str, Any],
    decision: Decision,
) -> None:
    action = payload.get("action")
    if action != "published":
        decision.reasons.append(f"release action {action!r} is not handled (published is)")
        return
    tag = _text(payload.get("release"), "tag_name")
    if not tag or not refs.valid_tag_name(root, tag):
        decision.reasons.append(f"the release names no valid tag ({tag!r})")
        return
    commit = refs.tag_commit(root, tag)
    if commit is None:
        decision.reasons.append(
            f"tag {tag!r} is not in the server's checkout, nor could it be fetched from its origin"
        )
        return
    with sessions() as session:
        for service in catalog.services:
            paths = catalog.paths.get(service)
            if not paths:
                continue  # no path, nowhere to promote (and no release reached it by a push either)
            steps, reasons = next_steps(session, service, commit, paths)
            decision.reasons.extend(reasons)
            decision.wanted.extend(Wanted(service, step.environment, git_commit=commit) for step in steps)
    if not decision.wanted:
        decision.reasons.insert(0, f"tag {tag!r} is commit {commit[:12]}: nothing to promote")


def decide_workflow_run(
    root: Path,
    sessions: sessionmaker[Session],
    catalog: Catalog,
    payload: dict[str, Any],
    decision: Decision,
    *,
    repository: str,
) -> None:
    action = payload.get("action")
    run = payload.get("workflow_run")
    name = _text(run, "name") or "?"
    if action != "completed":
        decision.reasons.append(f"workflow_run action {action!r} is not handled (completed is)")
        return
    conclusion = _text(run, "conclusion")
    if conclusion != "success":
        decision.reasons.append(f"workflow {name!r} concluded {conclusion!r}, not success: nothing deploys")
        return
    default_branch = _text(payload.get("repository"), "default_branch")
    branch = _text(run, "head_branch")
    if not default_branch or branch != default_branch:
        decision.reasons.append(f"the run's branch {branch!r} is not the default branch ({default_branch!r})")
        return
    head_repository = _text(run.get("head_repository") if isinstance(run, dict) else None, "full_name")
    if head_repository is not None and head_repository.lower() != repository.lower():
        decision.reasons.append(f"the run's commit comes from {head_repository!r}, not {repository!r}")
        return
    commit = _text(run, "head_sha")
    if commit is None or not SHA.match(commit):
        decision.reasons.append(f"the run names no commit ({commit!r})")
        return
    if not refs.ensure_commit(root, commit, timeout=refs.FETCH_SECONDS):
        decision.reasons.append(
            f"commit {commit[:12]} is not in the server's checkout, nor could it be fetched from its origin"
        )
        return
    with sessions() as session:
        for service in catalog.services:
            for environment in first_environments(catalog, service, decision):
                why_not = _unchanged(session, root, service, environment, commit)
                if why_not is None:
                    decision.wanted.append(Wanted(service, environment, git_commit=commit))
                else:
                    decision.reasons.append(why_not)


def _unchanged(session: Session, root: Path, service: str, environment: str, commit: str) -> str | None:
    """Why `service` has nothing new for `environment` at `commit` (None: deploy it)."""
    current = repo.latest_deployment(session, service, environment, phases=CURRENT_PHASES)
    if current is None:
        return None
    base = current.release.git_commit
    if base == commit:
        return f"{service}: {environment} already runs commit {commit[:12]} ({current.phase})"
    if base == UNVERSIONED:
        return None
    paths = refs.changed_between(root, base, commit)
    if paths is None or services_changed(paths, [service]):
        return None  # git cannot compare them (a commit gone from history): deploy rather than guess
    return f"{service}: none of its files changed since commit {base[:12]}, which {environment} runs"
