"""A service's status in an environment: what the store recorded beside what the clusters run, and where
the two disagree.

The store says what the orchestrator did; the clusters say what is true now. Someone may have edited a
VirtualService by hand, a cluster may have been recreated empty, or be unreachable: each of those is a
disagreement, named per cluster, rather than a recorded "Succeeded" repeated as if it were still so.
Beside it, each cluster's drift from the last commit of the service's desired state (`rollout/drift.py`),
read over the same connection within the same deadline.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from orchestrator.build.reference import parse_reference
from orchestrator.config import Environment
from orchestrator.gitops.repository import GitOpsError
from orchestrator.kube.client import KubeClient
from orchestrator.rollout.desired import GitDesiredState
from orchestrator.rollout.drift import (
    ClusterDrift,
    CommittedState,
    cluster_drift,
    committed_state,
    explain,
    overall,
    placeholder,
    unknown,
)
from orchestrator.rollout.live import Connect, LiveCluster, gather, read_cluster
from orchestrator.store import repository as repo
from orchestrator.store.models import ACTIVE_PHASES, Deployment, Phase, Release
from orchestrator.store.views import deployment_view


def service_status(
    session: Session,
    service: str,
    environment: Environment,
    *,
    connect: Connect,
    timeout: float,
    desired: GitDesiredState,
) -> dict[str, Any] | None:
    """The newest deployment of `service` in `environment` with each cluster's live state, or None when
    nothing was ever deployed there."""
    latest = repo.latest_deployment(session, service, environment.name)
    if latest is None:
        return None
    view = deployment_view(latest)
    running = repo.latest_deployment(session, service, environment.name, phases={Phase.SUCCEEDED})
    # What serves traffic: the last release that rolled out everywhere (a failed or rolled-back attempt
    # after it left it in place).
    view["running"] = (
        None
        if running is None
        else {
            "deployment": str(running.id),
            "image": running.release.image_ref,
            "git_commit": running.release.git_commit,
            "since": running.finished_at.isoformat() if running.finished_at else None,
        }
    )
    recorded = {c.cluster: c for c in latest.clusters}
    clusters = [c for c in environment.clusters if c.name in recorded]
    committed, unreadable = _committed(desired, environment, service)
    active = latest if latest.phase in ACTIVE_PHASES else None
    answers = gather(
        clusters,
        lambda cluster: _read(
            connect(cluster), environment.namespace, service, committed, unreadable, active
        ),
        lambda cluster, error: (LiveCluster(cluster=cluster.name, error=error), unknown(cluster.name, error)),
        timeout=timeout,
    )
    drifts = {name: drift for name, (_, drift) in answers.items()}
    view["drift"] = {
        "state": overall(list(drifts.values())).value,
        "commit": committed.commit if committed else None,
        "note": explain(latest),
        "error": unreadable,
    }
    problems: list[str] = []
    for entry in view["clusters"]:
        answer = answers.get(entry["cluster"])
        if answer is None:  # recorded for a cluster the environment no longer has
            entry["live"] = None
            entry["drift"] = None
            entry["disagreements"] = ["the environment no longer has this cluster"]
        else:
            state, drift = answer
            entry["live"] = state.to_json()
            entry["drift"] = drift.to_json()
            entry["disagreements"] = disagreements(entry, state, latest, running)
        entry["touched"] = entry["phase"] != Phase.PENDING.value or latest.phase not in _UNTOUCHING
        problems += [f"{entry['cluster']}: {d}" for d in entry["disagreements"]]
    view["disagreements"] = problems
    return view


def _committed(
    desired: GitDesiredState, environment: Environment, service: str
) -> tuple[CommittedState | None, str | None]:
    """The service's committed files, or why the GitOps repository could not be read (status still shows
    everything else)."""
    try:
        return committed_state(desired, environment, service), None
    except GitOpsError as exc:
        return None, str(exc)


def _read(
    client: KubeClient,
    namespace: str,
    service: str,
    committed: CommittedState | None,
    unreadable: str | None,
    active: Deployment | None,
) -> tuple[LiveCluster, ClusterDrift]:
    """One cluster's live state and its drift from the commit, over one connection."""
    state = read_cluster(client, namespace=namespace, service=service)
    if committed is None:
        return state, unknown(client.cluster, f"the GitOps repository could not be read: {unreadable}")
    try:
        drift = placeholder(client.cluster, committed, active) or cluster_drift(
            client, client.cluster, committed.objects[client.cluster]
        )
    except Exception as exc:  # the live state was read: a failure comparing it costs only the drift column
        drift = unknown(client.cluster, f"{type(exc).__name__}: {exc}")
    return state, drift


# A Pending cluster of a deployment in these phases was not touched by it (finished before reaching it, or
# waiting for an approval): its live state is compared with the last good release, not with this one.
_UNTOUCHING = {
    p.value
    for p in (
        Phase.SUCCEEDED,
        Phase.ROLLED_BACK,
        Phase.ABORTED,
        Phase.FAILED,
        Phase.AWAITING_APPROVAL,
        Phase.AWAITING_MERGE,
    )
}


def disagreements(
    recorded: dict[str, Any], live: LiveCluster, latest: Deployment, running: Deployment | None
) -> list[str]:
    """Where the cluster differs from what the store says it should run (empty: they agree)."""
    if not live.reachable:
        return [f"unreachable: {live.error}"]
    # The release its stable pods should run: this deployment's once it finished here, else the last
    # good one (a canary, a rollback and an untouched cluster all leave the stable release in place).
    expected = latest.release if recorded["phase"] == Phase.SUCCEEDED.value else None
    if expected is None and running is not None:
        expected = running.release
    found: list[str] = []
    if live.stable is None:
        if expected is not None or recorded["phase"] != Phase.PENDING.value:
            found.append(f"the service is not running here (no Deployment/{latest.service})")
        return found
    if expected is not None and not same_image(expected, live.stable.image):
        found.append(f"stable runs {live.stable.image}, recorded {expected.image_ref}")
    if not live.stable.ready:
        found.append(f"Deployment/{live.stable.name} is not ready: {live.stable.message}")
    if live.route_problem:
        found.append(live.route_problem)
    elif (live.stable_weight, live.canary_weight) != (recorded["stable_weight"], recorded["canary_weight"]):
        found.append(
            f"live weights {live.stable_weight}/{live.canary_weight} (stable/canary), "
            f"recorded {recorded['stable_weight']}/{recorded['canary_weight']}"
        )
    if live.canary_weight and (live.canary is None or not live.canary.ready):
        found.append(
            f"the canary carries {live.canary_weight}% but Deployment/{latest.service}-canary is not ready"
        )
    return found


def same_image(release: Release, image: str | None) -> bool:
    """The live image is the release's: the same digest when it has one (each cloud pulls it from its own
    registry, so the registry may differ), else the same repository and tag."""
    if image is None:
        return False
    try:
        live = parse_reference(image)
        wanted = parse_reference(release.image_ref)
    except ValueError:
        return image == release.image_ref
    if release.image_digest:
        return live.digest == release.image_digest
    return (live.repository, live.tag, live.digest) == (wanted.repository, wanted.tag, wanted.digest)


def summary(entry: dict[str, Any]) -> str:
    """One phrase for a cluster's live state, for the text table."""
    live = entry.get("live")
    if live is None:
        return "not in the environment"
    if not live["reachable"]:
        return "unreachable"
    if not live["running"]:
        return "not running"
    stable = live["stable"]
    text = f"{stable['version'] or '?'} {stable['available']}/{stable['replicas']} ready"
    canary = live["canary"]
    if canary and canary["replicas"]:
        text += f", canary {canary['version'] or '?'} {canary['available']}/{canary['replicas']}"
    return text


def statuses(
    session: Session,
    services: Sequence[str],
    environments: Sequence[Environment],
    *,
    connect: Connect,
    timeout: float,
    desired: GitDesiredState,
) -> list[dict[str, Any]]:
    views = []
    for service in services:
        for environment in environments:
            view = service_status(
                session, service, environment, connect=connect, timeout=timeout, desired=desired
            )
            if view is not None:
                views.append(view)
    return views
