"""Rollback: the environment's files go back to an earlier good release's commit, then a fast rollout of it.

`rollback SERVICE --env ENV` undoes the deployment the environment runs now (its last Succeeded one) by
restoring the files of the last good release before it: the newest Succeeded deployment of another
release that no rollback has undone since (so a second rollback does not bounce back to the release the
first one left). `--to RELEASE` names the release instead; it must have Succeeded in ENV.

What is rolled out is read back from that deployment's GitOps commit (`DesiredState.read`: the files, not
a new rendering, validated like a rendered set), and the engine commits it again on top of the branch: a
revert commit whose files equal the earlier commit's. The rollout is fast by default — a rolling update
per wave, no canary steps or analysis, like Argo Rollouts' rollback window; `--strategy canary` goes step
by step with the pipeline as it was then. The deployment is of kind `rollback`, names the deployment it
undoes, and rolls out the earlier release unchanged.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.orm import Session

from orchestrator.config import Project
from orchestrator.errors import OrchestratorError
from orchestrator.rollout.desired import DesiredState
from orchestrator.rollout.engine import Prepared
from orchestrator.rollout.frozen import FrozenPlan
from orchestrator.rollout.request import DeployRequest
from orchestrator.store import repository as repo
from orchestrator.store.models import Deployment, DeploymentKind


class RollbackRefusedError(OrchestratorError):
    """There is nothing to roll back, or nothing good to go back to (exit 1): nothing was recorded."""


@dataclass(frozen=True)
class Rollback:
    request: DeployRequest
    prepared: Prepared
    undoes: Deployment  # what the environment runs now
    restores: Deployment  # the earlier good deployment whose commit comes back


def choose(
    session: Session, service: str, environment: str, release_ref: str | None
) -> tuple[Deployment, Deployment]:
    """(the deployment undone, the one restored)."""
    succeeded = repo.succeeded_deployments(session, service, environment)
    if not succeeded:
        raise RollbackRefusedError(
            f"{service} never Succeeded in {environment}: there is nothing to roll back; nothing was recorded"
        )
    current = succeeded[0]
    if release_ref is not None:
        release = repo.find_release(session, service, release_ref)
        if release.id == current.release_id:
            raise RollbackRefusedError(
                f"{environment} already runs release {str(release.id)[:8]} of {service} (deployment "
                f"{str(current.id)[:8]}); nothing to roll back to"
            )
        target = next((d for d in succeeded if d.release_id == release.id and d.gitops_commit), None)
        if target is None:
            raise RollbackRefusedError(
                f"release {str(release.id)[:8]} of {service} never Succeeded in {environment}; a rollback "
                f"goes back to a release verified there (`orchestrator releases {service}`)"
            )
        return current, target
    undone = {d.undoes_id for d in succeeded if d.kind == DeploymentKind.ROLLBACK.value}
    target = next(
        (
            d
            for d in succeeded[1:]
            if d.release_id != current.release_id and d.id not in undone and d.gitops_commit
        ),
        None,
    )
    if target is None:
        raise RollbackRefusedError(
            f"{service} in {environment} has no earlier good release to roll back to (deployment "
            f"{str(current.id)[:8]} runs release {str(current.release_id)[:8]}); nothing was recorded"
        )
    return current, target


def prepare(
    session: Session,
    project: Project,
    desired: DesiredState,
    service: str,
    environment_name: str,
    *,
    release_ref: str | None,
    step_by_step: bool,
    actor: str | None,
    user_id: uuid.UUID | None,
) -> Rollback:
    environment = project.environment(environment_name)
    current, target = choose(session, service, environment_name, release_ref)
    assert target.gitops_commit is not None
    plan = FrozenPlan.from_record(target.plan, deployment=target.id)
    sets = plan.rendered()
    joined = [c.name for c in environment.clusters if c.name not in sets]
    if joined:
        raise RollbackRefusedError(
            f"{', '.join(joined)} joined {environment_name} after release {str(target.release_id)[:8]} ran "
            f"there (deployment {str(target.id)[:8]}), so its commit has no desired state for them; deploy "
            "or promote a release instead"
        )
    # A cluster since removed from the environment is left out: its file goes with the commit's rebase.
    kept = [sets[c.name] for c in environment.clusters]
    restored = desired.read(environment, target.gitops_commit, kept)
    original = DeployRequest.from_record(target.config, deployment=target.id)
    request = DeployRequest(
        service=service,
        environment=environment_name,
        git_commit=target.release.git_commit,
        committed_at=original.committed_at,
        image=original.image,
        digest=original.digest,
        built_repository=original.built_repository,
        overrides=original.overrides,
        strategy=None if step_by_step else "rolling",
        actor=actor,
        user_id=user_id,
        kind=DeploymentKind.ROLLBACK,
        release_id=target.release_id,
        source_deployment=target.id,
        undoes=current.id,
    )
    return Rollback(request, Prepared(plan.the_pipeline(), restored), current, target)
