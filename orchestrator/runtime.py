"""Wiring for commands that roll out: the state store, cluster connections, and the rollout engine.

Kept out of `cli/` so the server's workers assemble an engine the same way.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy.orm import Session, sessionmaker

from orchestrator.clusters.connect import connect
from orchestrator.config import ClusterConfig, Project
from orchestrator.errors import ConfigError, OrchestratorError
from orchestrator.kube.client import KubeClient
from orchestrator.rollout import drift_alerts
from orchestrator.rollout.desired import GitDesiredState
from orchestrator.rollout.drift_alerts import Finding
from orchestrator.rollout.engine import Reporter, RolloutEngine
from orchestrator.rollout.lease import HEARTBEAT_SECONDS, LEASE_SECONDS
from orchestrator.rollout.request import DeployRequest, Trigger
from orchestrator.settings import state_dir
from orchestrator.store import db
from orchestrator.store import repository as repo

if TYPE_CHECKING:
    from orchestrator.identity.principal import Principal
    from orchestrator.notify.notifier import Notifier
    from orchestrator.rollout.drift import ServiceDrift

NOTIFY_FLUSH_ENV = "ORCHESTRATOR_NOTIFY_FLUSH_SECONDS"
NOTIFY_FLUSH_SECONDS = 10.0  # how long a command that drove a rollout waits, at its end, for deliveries


def open_store(url: str) -> sessionmaker[Session]:
    """Sessions on the state database. The embedded SQLite default is created or migrated on first use;
    a shared database (Postgres) must be migrated on purpose with `orchestrator db upgrade`."""
    return db.open_sessions(url)


def connect_cluster(cluster: ClusterConfig) -> KubeClient:
    return KubeClient(connect(cluster.target, name=cluster.name), cluster=cluster.name)


# Seconds a cluster has to answer before `status` reports it unreachable; status is a glance, not a wait.
STATUS_TIMEOUT = 5.0


def connect_quickly(cluster: ClusterConfig, timeout: float = STATUS_TIMEOUT) -> KubeClient:
    from orchestrator.kube.client import RetryPolicy

    # Few, quick retries: a cluster that does not answer at once is reported, not waited for.
    return KubeClient(
        connect(cluster.target, name=cluster.name),
        cluster=cluster.name,
        retry=RetryPolicy(attempts=2, max_seconds=timeout / 2),
        timeout=(timeout / 2, timeout / 2),
    )


def status(
    project: Project, sessions: sessionmaker[Session], service: str | None, environment: str | None
) -> list[dict[str, Any]]:
    """What `status` shows, the same from the command line and the REST API: the newest deployment of each
    service (or `service`) in each environment (or `environment`) beside what its clusters run now."""
    from orchestrator.rollout.status import statuses

    services = [project.pipeline(service).service] if service else project.service_names
    names = [environment] if environment else project.environment_names
    environments = [project.environment(name) for name in names]
    desired = GitDesiredState(state_dir(), project.root)  # what git holds, to tell drift from a rollout
    with sessions() as session:
        views = statuses(
            session,
            services,
            environments,
            connect=connect_quickly,
            timeout=STATUS_TIMEOUT,
            desired=desired,
        )
    record_drift(
        sessions,
        [
            (
                view["service"],
                view["environment"],
                (view.get("drift") or {}).get("commit"),
                [
                    _finding(c["cluster"], c.get("drift"))
                    for c in view.get("clusters") or []
                    if c.get("drift")
                ],
            )
            for view in views
        ],
    )
    return views


def _finding(cluster: str, drift: dict[str, Any]) -> Finding:
    return Finding(
        cluster, str(drift["state"]), list(drift.get("lines") or []), int(drift.get("fields") or 0)
    )


def record_drift(
    sessions: sessionmaker[Session], checked: list[tuple[str, str, str | None, list[Finding]]]
) -> None:
    """What a check found, for the notifier's `on-drift` (a new drift only; see rollout/drift_alerts.py)."""
    with sessions.begin() as session:
        for service, environment, commit, findings in checked:
            drift_alerts.record(session, service, environment, commit, findings)


def promote(
    project: Project,
    engine: RolloutEngine,
    principal: Principal,
    *,
    service: str,
    target: str,
    source: str | None = None,
    release_ref: str | None = None,
    actor: str | None = None,
    override_freeze: str | None = None,
    leased: bool = True,
    trigger: Trigger | None = None,
) -> tuple[uuid.UUID, list[str]]:
    """What `promote` does, the same from the command line, the REST API and a GitHub release: the release
    of `service` verified in the environment before `target` (or `source`) recorded as a deployment to
    `target`, unchanged (`leased=False`: for a job to drive; `trigger`: the webhook that asked). Returns the
    deployment and the lines that say what was promoted."""
    from orchestrator.identity.rules import Action, require
    from orchestrator.rollout import promotion

    pipeline = project.pipeline(service)
    project.environment(target)
    if source is not None:
        project.environment(source)
    previous = promotion.previous_environment(pipeline, target, source)
    require(principal, Action.PROMOTE, project.environment(target))
    with engine.sessions() as session:
        found = promotion.find_source(session, service, previous, release_ref)
        promotion.check_source(
            session,
            service,
            project.environment(previous),
            desired=GitDesiredState(state_dir(), project.root),
            connect=connect_cluster,
        )
    promoted = promotion.prepare(
        project, found, target, actor=principal.audit_name(actor), user_id=principal.user_id
    )
    request = promoted.request
    if trigger is not None:
        request = request.model_copy(update={"trigger": trigger})
    deployment_id = engine.create(
        request,
        principal=principal,
        override_freeze=override_freeze,
        prepared=promoted.prepared,
        leased=leased,
    )
    lines = [f"note: {promoted.note}"] if promoted.note else []
    lines.append(
        f"deployment {str(deployment_id)[:8]}: promote {service} release {str(found.release)[:8]} "
        f"({found.image}, commit {found.git_commit[:12]}) from {previous} to {target}"
    )
    return deployment_id, lines


def rollback(
    project: Project,
    engine: RolloutEngine,
    principal: Principal,
    *,
    service: str,
    environment: str,
    release_ref: str | None = None,
    step_by_step: bool = False,
    actor: str | None = None,
    override_freeze: str | None = None,
    leased: bool = True,
) -> tuple[uuid.UUID, list[str]]:
    """What `rollback` does, the same from the command line and the REST API: `environment`'s files for
    `service` put back as an earlier good release committed them, recorded as a deployment of kind
    rollback. Returns the deployment and the line that says what it undoes."""
    from orchestrator.identity.rules import Action, require
    from orchestrator.rollout import rollback as rollbacks

    project.pipeline(service)
    require(principal, Action.ROLLBACK, project.environment(environment))
    with engine.sessions() as session:
        planned = rollbacks.prepare(
            session,
            project,
            engine.desired,
            service,
            environment,
            release_ref=release_ref,
            step_by_step=step_by_step,
            actor=principal.audit_name(actor),
            user_id=principal.user_id,
        )
        undoes, restores = planned.undoes, planned.restores
        said = (
            f"{service} in {environment}: undo deployment {str(undoes.id)[:8]} (release "
            f"{str(undoes.release_id)[:8]}), back to release {str(restores.release_id)[:8]} as deployment "
            f"{str(restores.id)[:8]} committed it ({(restores.gitops_commit or '')[:12]})"
        )
    deployment_id = engine.create(
        planned.request,
        principal=principal,
        override_freeze=override_freeze,
        prepared=planned.prepared,
        leased=leased,
    )
    return deployment_id, [f"deployment {str(deployment_id)[:8]}: rollback of {said}"]


def release_trails(
    project: Project, sessions: sessionmaker[Session], service: str, limit: int
) -> list[dict[str, Any]]:
    """What `releases SERVICE -o json` shows: its releases, newest first, with where each Succeeded."""
    from orchestrator.errors import UnknownNameError
    from orchestrator.store.views import trail_view

    with sessions() as session:
        trails = repo.release_trails(session, service, limit=limit)
        if not trails and service not in project.service_names:
            raise UnknownNameError("service", service, project.service_names)
        return [trail_view(t.release, t.verified) for t in trails]


DRIFT_TIMEOUT = 10.0  # seconds each cluster has to answer `drift`: a look, not a wait


def drift(
    project: Project, sessions: sessionmaker[Session], service: str | None, environment: str | None
) -> list[ServiceDrift]:
    """What `drift` reports, the same from the command line and the REST API: for the service (default:
    every one) in the environment (default: every one), the live objects that differ from the last commit.
    Asked about everything, pairs never committed say nothing; a named pair is always reported."""
    from orchestrator.rollout.drift import DriftState, service_drift

    services = [project.pipeline(service).service] if service else project.service_names
    names = [environment] if environment else project.environment_names
    environments = [project.environment(name) for name in names]
    desired = GitDesiredState(state_dir(), project.root)
    with sessions() as session:
        reports = [
            service_drift(
                session,
                name,
                where,
                desired=desired,
                connect=lambda c: connect_quickly(c, DRIFT_TIMEOUT),
                timeout=DRIFT_TIMEOUT,
            )
            for name in services
            for where in environments
        ]
    record_drift(
        sessions,
        [
            (
                r.service,
                r.environment,
                r.commit,
                [Finding(c.cluster, c.state.value, c.lines(), c.fields) for c in r.clusters],
            )
            for r in reports
        ],
    )
    if not (service and environment):
        reports = [r for r in reports if r.state is not DriftState.NOT_COMMITTED]
    return reports


def rollout_engine(
    project: Project,
    database_url: str,
    *,
    report: Reporter | None = None,
    sessions: sessionmaker[Session] | None = None,
    checkout: Path | None = None,
) -> RolloutEngine:
    """An engine for `project`. A worker passes the `sessions` it shares between jobs, and the `checkout`
    its project was read from when that is a commit's tree (relative GitOps repository paths are read
    relative to the checkout)."""
    lease_seconds, heartbeat_seconds = lease_settings()
    return RolloutEngine(
        project,
        sessions if sessions is not None else open_store(database_url),
        desired=GitDesiredState(state_dir(), checkout or project.root),
        connect=connect_cluster,
        report=report,
        lease_seconds=lease_seconds,
        heartbeat_seconds=heartbeat_seconds,
    )


def deploy_request(
    project: Project,
    sessions: sessionmaker[Session],
    principal: Principal,
    *,
    service: str,
    environment: str,
    image: str | None = None,
    assignments: Sequence[str] = (),
    strategy: Literal["rolling"] | None = None,
    actor: str | None = None,
    commit: str | None = None,
    checkout: Path | None = None,
) -> DeployRequest:
    """What `deploy` asks of the engine, the same from the command line and the REST API: the checkout's
    HEAD, the image `orchestrator build` recorded for it (unless `image` names one), the `--set` values.
    With `commit`, `project` is that commit's tree (`checkouts.project_at`) and `checkout` the git
    checkout it was read from."""
    from orchestrator.gitops.commits import commit_time, head_commit
    from orchestrator.render.values import parse_set_overrides

    commit = commit or head_commit(project.root)
    built = None
    if image is None:
        with sessions() as session:
            built = repo.built_image(session, service, commit)
    return DeployRequest(
        service=service,
        environment=environment,
        git_commit=commit,
        committed_at=commit_time(checkout or project.root, commit),
        image=image,
        digest=built[1] if built else None,
        built_repository=built[0] if built else None,
        overrides=parse_set_overrides(assignments),
        strategy=strategy,
        actor=principal.audit_name(actor),
        user_id=principal.user_id,
    )


def lease_settings() -> tuple[float, float]:
    """The driver's lease and heartbeat (seconds); the environment may shorten them (tests that kill a
    driver on purpose do)."""
    values = [LEASE_SECONDS, HEARTBEAT_SECONDS]
    for index, variable in enumerate(("ORCHESTRATOR_LEASE_SECONDS", "ORCHESTRATOR_HEARTBEAT_SECONDS")):
        value = os.environ.get(variable)
        if value:
            try:
                values[index] = float(value)
            except ValueError:
                raise ConfigError(f"{variable}={value!r} is not a number of seconds") from None
    return values[0], values[1]


def notifies(project: Project) -> bool:
    """Whether any environment of the checkout has a notification or GitHub destination, or any pipeline a
    post-rollout or post-promotion hook."""
    for name in project.environment_names:
        try:
            environment = project.environment(name)
        except OrchestratorError:
            continue  # a broken file is reported by whatever command uses that environment
        if environment.notifications or environment.github is not None:
            return True
    for service in project.service_names:
        try:
            hooks = project.pipeline(service).hooks
        except OrchestratorError:
            continue
        if hooks.post_rollout or hooks.post_promotion:
            return True
    return False


def start_notifier(project: Project, sessions: sessionmaker[Session]) -> Notifier | None:
    """A running notifier for a command that drives rollouts (None when nothing is configured to be told).

    It tails the audit trail on its own thread while the command runs; the command then calls
    `stop(flush_seconds=notify_flush_seconds())` so the last phase change is delivered before it exits
    (what is still pending then stays in the outbox for the next notifier: another command, the server)."""
    if not notifies(project):
        return None
    from orchestrator.notify.notifier import Notifier

    return Notifier(project, sessions).start()


def notify_flush_seconds() -> float:
    value = os.environ.get(NOTIFY_FLUSH_ENV)
    if not value:
        return NOTIFY_FLUSH_SECONDS
    try:
        seconds = float(value)
    except ValueError:
        raise ConfigError(f"{NOTIFY_FLUSH_ENV}={value!r} is not a number of seconds") from None
    if seconds < 0:
        raise ConfigError(f"{NOTIFY_FLUSH_ENV}={value!r} must not be negative")
    return seconds


def stats(
    project: Project,
    sessions: sessionmaker[Session],
    *,
    service: str | None,
    environment: str | None,
    since: str,
    key: str,
) -> dict[str, object]:
    """DORA's four keys for `stats` and `GET /api/v1/stats`: names checked (bad usage), the window parsed
    (`key` names the option or parameter at fault), the figures computed from the store."""
    from orchestrator.identity.tokens import parse_span
    from orchestrator.store import dora
    from orchestrator.store.models import utcnow

    if service is not None:
        project.pipeline(service)
    if environment is not None:
        project.environment(environment)
    until = utcnow()
    start = dora.window_start(parse_span(since), until, text=since, key=key)
    with sessions() as session:
        figures = dora.compute(session, since=start, until=until, service=service, environment=environment)
    return figures.to_json()
