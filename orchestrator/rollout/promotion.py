"""Promotion: one recorded release, verified in the previous environment of its path, rolled out unchanged.

A release is a service at a git commit with an image (by digest once built). `promote SERVICE --to ENV`
takes the release that last Succeeded in the environment before ENV on the pipeline's promotion path (or
the one `--release` names, which must have Succeeded there), and renders it for ENV as the pipeline and
templates were *at the release's commit* (`git archive` of that commit, so later edits and the working
tree change nothing), with ENV's environment file as it is now (the target's values, clusters and
registries). The image never changes: a built release is pinned by its digest in each cluster's registry,
any other by the reference the source ran. The `--set` values of the deployment that verified it go with
it: they are part of what was verified.

A checkout that is not a git repository has no commits to go back to: the release (recorded at commit
0000…) is rendered from the files as they are, and `Promotion.note` says so.

Refusals come before anything is recorded: an environment that is not next on the path is bad usage
(exit 2, naming the path); a source whose last deployment is not Succeeded, a release that never
Succeeded there, or a source whose clusters have drifted from its last commit (or could not be checked)
cannot be promoted (exit 1, naming why): what it verified is no longer what it runs.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.config import Environment, Pipeline, Project
from orchestrator.errors import ConfigError, OrchestratorError
from orchestrator.gitops.commits import UNVERSIONED, in_git, tree_at
from orchestrator.render.engine import Renderer
from orchestrator.rollout.desired import GitDesiredState
from orchestrator.rollout.drift import DriftState, ServiceDrift, service_drift
from orchestrator.rollout.engine import Prepared
from orchestrator.rollout.gates import validate_analysis
from orchestrator.rollout.live import Connect
from orchestrator.rollout.request import DeployRequest
from orchestrator.store import repository as repo
from orchestrator.store.models import ACTIVE_PHASES, Deployment, DeploymentKind, Phase, Release

# What a release's commit contributes to its rendering; the environments are the checkout's own.
RELEASE_FOLDERS = ("pipelines", "templates")
DRIFT_TIMEOUT = 30.0  # seconds for reading every cluster of the source (in parallel, one deadline)
SHOWN_FIELDS = 5  # drifted fields named in a refusal (`drift` lists them all)


class PromotionRefusedError(OrchestratorError):
    """The source cannot vouch for the release (exit 1): nothing was recorded."""


@dataclass(frozen=True)
class Source:
    """The deployment that verified the release in the previous environment of the path."""

    environment: str
    deployment: uuid.UUID
    release: uuid.UUID
    git_commit: str
    image: str  # as the source ran it
    request: DeployRequest  # the source deployment's own request (its image choice and --set values)


@dataclass(frozen=True)
class Promotion:
    request: DeployRequest
    prepared: Prepared
    source: Source
    note: str | None  # said to the user when the templates could not be taken from the release's commit


def path_text(paths: list[list[str]]) -> str:
    return "; ".join(" -> ".join(path) for path in paths) or "none"


def previous_environment(pipeline: Pipeline, target: str, source: str | None) -> str:
    """The environment before `target` on its promotion path; `source`, when given, must be it (exit 2)."""
    where = f"pipelines/{pipeline.service}.yaml"
    paths = path_text(pipeline.promotion_paths)
    path = pipeline.promotion_path(target)
    if path is None or path.index(target) == 0:
        place = "is not on" if path is None else "is the first environment of"
        raise ConfigError(
            f"--to {target}: {target} {place} {pipeline.service}'s promotion path ({paths}); a release is "
            "promoted to the environment after the one it Succeeded in",
            file=where,
            key="promotion",
        )
    previous = path[path.index(target) - 1]
    if source is not None and source != previous:
        raise ConfigError(
            f"--from {source}: {target} is not next after {source} on {pipeline.service}'s promotion path "
            f"({paths}); it is promoted to from {previous}",
            file=where,
            key="promotion",
        )
    return previous


@dataclass(frozen=True)
class NextStep:
    """Where a release goes next on one promotion path, and the environment that verified it (or is
    verifying it now: then the promotion's job waits for that rollout to Succeed)."""

    environment: str
    source: str
    release: uuid.UUID


def _verified_at_commit(session: Session, service: str, commit: str) -> dict[str, uuid.UUID]:
    """environment -> the release of `service` at `commit` whose Succeeded deployment there is newest."""
    query = (
        select(Deployment.environment, Deployment.release_id)
        .join(Release, Release.id == Deployment.release_id)
        .where(
            Release.service == service,
            Release.git_commit == commit,
            Deployment.phase == Phase.SUCCEEDED.value,
        )
        .order_by(Deployment.created_at, Deployment.id)
    )
    return {environment: release for environment, release in session.execute(query)}


def rolling_out_at_commit(session: Session, service: str, commit: str) -> dict[str, Deployment]:
    """environment -> the active deployment of `service` there whose release is at `commit` (at most one
    deployment per service and environment is active, so it is that environment's newest)."""
    query = (
        select(Deployment)
        .join(Release, Release.id == Deployment.release_id)
        .where(
            Release.service == service,
            Release.git_commit == commit,
            Deployment.phase.in_([phase.value for phase in ACTIVE_PHASES]),
        )
    )
    return {deployment.environment: deployment for deployment in session.scalars(query)}


def next_steps(
    session: Session, service: str, commit: str, paths: list[list[str]]
) -> tuple[list[NextStep], list[str]]:
    """Where a release of `service` at `commit` is promoted to next (a GitHub release of that commit asks for
    it): on each promotion path, the environment after the furthest one it Succeeded in — Kargo's freight
    moving one stage on once the stage before has verified it. Where the furthest environment is rolling
    that release out now (a release published while its first rollout runs), the step is taken too and
    its job waits for that rollout (`runner._promote`). Also the reasons a path gets nothing (never
    verified on it, or already at its end), and what a waiting step waits for."""
    verified = _verified_at_commit(session, service, commit)
    rolling = rolling_out_at_commit(session, service, commit)
    steps: list[NextStep] = []
    reasons: list[str] = []
    if not verified and not rolling:
        return steps, [f"{service}: no release at commit {commit[:12]} has Succeeded anywhere"]
    for path in paths:
        reached = [index for index, name in enumerate(path) if name in verified or name in rolling]
        shown = " -> ".join(path)
        if not reached:
            reasons.append(f"{service}: its release at {commit[:12]} has not Succeeded on {shown}")
            continue
        source = path[reached[-1]]
        if reached[-1] == len(path) - 1:
            done = "is rolling out" if source in rolling else "already Succeeded"
            reasons.append(f"{service}: its release at {commit[:12]} {done} in {source}, the end of {shown}")
        elif path[reached[-1] + 1] not in {step.environment for step in steps}:
            target = path[reached[-1] + 1]
            in_flight = rolling.get(source)
            if in_flight is None:
                steps.append(NextStep(target, source, verified[source]))
                continue
            steps.append(NextStep(target, source, in_flight.release_id))
            reasons.append(
                f"{service}: its release at {commit[:12]} is rolling out in {source} (deployment "
                f"{str(in_flight.id)[:8]}, {in_flight.phase}): it goes on to {target} once that rollout "
                "Succeeds"
            )
    return steps, reasons


def verified_release(session: Session, service: str, environment: str, commit: str) -> uuid.UUID | None:
    """The release of `service` at `commit` that `environment` verified last (None: none Succeeded there)."""
    return _verified_at_commit(session, service, commit).get(environment)


def find_source(session: Session, service: str, environment: str, release_ref: str | None) -> Source:
    """The Succeeded deployment in `environment` that vouches for the release to promote."""
    latest = repo.latest_deployment(session, service, environment)
    if latest is None:
        raise PromotionRefusedError(
            f"{service} was never deployed to {environment}, so there is no release to promote from it"
        )
    if Phase(latest.phase) is not Phase.SUCCEEDED:
        raise PromotionRefusedError(
            f"the last deployment of {service} in {environment} ({str(latest.id)[:8]}, release "
            f"{str(latest.release_id)[:8]}) is {latest.phase}, not Succeeded: {environment} does not vouch "
            "for a release now; nothing was promoted"
        )
    verified: Deployment | None = latest
    if release_ref is not None:
        release = repo.find_release(session, service, release_ref)
        verified = next(
            (
                d
                for d in repo.succeeded_deployments(session, service, environment)
                if d.release_id == release.id
            ),
            None,
        )
        if verified is None:
            raise PromotionRefusedError(
                f"release {str(release.id)[:8]} of {service} never Succeeded in {environment}; only a "
                f"release verified there is promoted from it (`orchestrator releases {service}`)"
            )
    assert verified is not None
    request = DeployRequest.from_record(verified.config, deployment=verified.id)
    return Source(
        environment=environment,
        deployment=verified.id,
        release=verified.release_id,
        git_commit=verified.release.git_commit,
        image=verified.release.image_ref,
        request=request,
    )


def check_source(
    session: Session,
    service: str,
    environment: Environment,
    *,
    desired: GitDesiredState,
    connect: Connect,
    timeout: float = DRIFT_TIMEOUT,
) -> None:
    """Refuse a source whose clusters do not run what it last committed (read live, field by field)."""
    refuse_drift(
        service_drift(session, service, environment, desired=desired, connect=connect, timeout=timeout)
    )


def refuse_drift(report: ServiceDrift) -> None:
    where = f"{report.service} in {report.environment}"
    if report.state is DriftState.IN_SYNC:
        return
    nothing = "; nothing was promoted"
    if report.state is DriftState.DRIFTED:
        lines = [f"{c.cluster}: {line}" for c in report.clusters for line in c.lines()]
        shown = "; ".join(lines[:SHOWN_FIELDS])
        if len(lines) > SHOWN_FIELDS:
            shown += f" (and {len(lines) - SHOWN_FIELDS} more)"
        raise PromotionRefusedError(
            f"{where} has drifted from its last commit {(report.commit or '')[:12]}: {shown}{nothing} "
            f"(`orchestrator drift {report.service} --env {report.environment}`; a deploy puts it back)"
        )
    if report.state is DriftState.UNKNOWN:
        why = "; ".join(
            f"{c.cluster}: {c.error}" for c in report.clusters if c.state is DriftState.UNKNOWN and c.error
        )
        raise PromotionRefusedError(
            f"{where} could not be checked for drift ({why or report.error or 'unreadable'}){nothing}"
        )
    missing = [c.cluster for c in report.clusters if c.state is DriftState.NOT_COMMITTED]
    raise PromotionRefusedError(
        f"{where} is {report.state.value}"
        + (f" ({', '.join(missing)} have no committed desired state)" if missing else "")
        + f": what it runs cannot be checked against a commit{nothing}"
    )


@contextmanager
def project_at(project: Project, commit: str) -> Iterator[tuple[Project, str | None]]:
    """The project as it was at `commit` (its pipelines and templates; today's environments), and a note
    when that cannot be had because the checkout is not in git."""
    if commit == UNVERSIONED or not in_git(project.root):
        yield (
            project,
            (
                "the checkout is not a git repository: the release is rendered from the pipelines and "
                "templates as they are now"
            ),
        )
        return
    with tree_at(project.root, commit, RELEASE_FOLDERS) as tree:
        shutil.copytree(project.environments_dir, tree / "environments")
        yield Project(Path(tree)), None


def prepare(
    project: Project,
    source: Source,
    target: str,
    *,
    actor: str | None,
    user_id: uuid.UUID | None,
) -> Promotion:
    """Render the source's release for `target`, unchanged but for the target's values."""
    image, digest, built = _image_of(source)
    with project_at(project, source.git_commit) as (at_commit, note):
        pipeline = at_commit.pipeline(source.request.service)
        validate_analysis(at_commit, pipeline)
        sets = Renderer(at_commit).render_environment(
            pipeline,
            at_commit.environment(target),
            overrides=source.request.overrides,
            image=image,
            digest=digest,
            built_repository=built,
        )
    request = DeployRequest(
        service=source.request.service,
        environment=target,
        git_commit=source.git_commit,
        committed_at=source.request.committed_at,
        image=image,
        digest=digest,
        built_repository=built,
        overrides=source.request.overrides,
        actor=actor,
        user_id=user_id,
        kind=DeploymentKind.PROMOTE,
        release_id=source.release,
        source_deployment=source.deployment,
    )
    return Promotion(request, Prepared(pipeline, sets), source, note)


def _image_of(source: Source) -> tuple[str | None, str | None, str | None]:
    """(image, digest, built repository) to render the release with: a built release by its digest (each
    cluster's registry holds the same bytes), else exactly the reference the source ran."""
    if source.request.digest:
        return None, source.request.digest, source.request.built_repository
    return source.image, None, None
