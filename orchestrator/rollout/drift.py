"""Drift of one service in one environment: what its clusters run against the last commit of its desired
state (the tip of the environment's GitOps branch holds every service's last commit; a deployment owns
exactly its service's files).

`drift` prints this, `status` shows it per cluster, `diff` puts the committed objects between the rendered
and the live ones. The field comparison itself is `kube/drift.py`; this module decides what to compare:
every committed object of each cluster, unless a rollout of the service holds the environment — then the
weights, the canary subset and the canary differ by design, and the service is reported as rolling out.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from orchestrator.config import ClusterConfig, Environment
from orchestrator.gitops.manifests import CommittedManifestError, Manifest, load, manifest_path
from orchestrator.kube.client import KubeClient
from orchestrator.kube.drift import ObjectDrift, delegated_fields, object_drift, object_name, set_drift
from orchestrator.kube.live import manifest_diff, object_diff, read_live
from orchestrator.rollout.desired import GitDesiredState, folder
from orchestrator.rollout.live import Connect, gather
from orchestrator.store import repository as repo
from orchestrator.store.models import ACTIVE_PHASES, Deployment, Phase


class DriftState(enum.StrEnum):
    IN_SYNC = "in sync"
    DRIFTED = "drifted"
    UNKNOWN = "unknown"  # the cluster (or the repository) could not be read
    ROLLING_OUT = "rolling out"  # a rollout holds the environment: differences are its steps
    NOT_COMMITTED = "not committed"  # no desired state for it in git yet: nothing to compare with


@dataclass(frozen=True)
class ClusterDrift:
    cluster: str
    state: DriftState
    objects: list[ObjectDrift] = field(default_factory=list)  # only the ones that drifted
    checked: int = 0  # committed objects compared
    error: str | None = None

    @property
    def fields(self) -> int:
        """How many differences (a missing object counts once)."""
        return sum(o.count for o in self.objects)

    def label(self) -> str:
        """What `status` shows in its drift column."""
        if self.state is DriftState.DRIFTED:
            return f"drifted ({self.fields} field{'s' if self.fields != 1 else ''})"
        return self.state.value

    def lines(self) -> list[str]:
        return [line for o in self.objects for line in o.lines()]

    def to_json(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "state": self.state.value,
            "fields": self.fields,
            "checked": self.checked,
            "error": self.error,
            "objects": [o.to_json() for o in self.objects],
            # each difference in words: `Deployment/api spec.replicas: committed 2, live 5`
            "lines": self.lines(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ClusterDrift:
        """The inverse of `to_json`: what `drift --server` rebuilds from the API's answer."""
        return cls(
            data["cluster"],
            DriftState(data["state"]),
            [ObjectDrift.from_json(o) for o in data["objects"]],
            data["checked"],
            data["error"],
        )


@dataclass(frozen=True)
class ServiceDrift:
    service: str
    environment: str
    commit: str | None  # the tip the committed files were read from; None when the branch is empty
    state: DriftState
    clusters: list[ClusterDrift]
    rollout: dict[str, str] | None = None  # the active deployment, when rolling out
    note: str | None = None  # why the clusters may knowingly differ from the commit
    error: str | None = None  # the repository could not be read

    @property
    def drifted(self) -> bool:
        return self.state is DriftState.DRIFTED

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "environment": self.environment,
            "commit": self.commit,
            "state": self.state.value,
            "rollout": self.rollout,
            "note": self.note,
            "error": self.error,
            "clusters": [c.to_json() for c in self.clusters],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ServiceDrift:
        return cls(
            data["service"],
            data["environment"],
            data["commit"],
            DriftState(data["state"]),
            [ClusterDrift.from_json(c) for c in data["clusters"]],
            data["rollout"],
            data["note"],
            data["error"],
        )


@dataclass(frozen=True)
class CommittedState:
    """One service's committed files at the tip of its environment's branch."""

    commit: str | None
    objects: dict[str, list[Manifest]]  # cluster -> its committed objects
    problems: dict[str, str]  # cluster -> why its committed file cannot be read


def committed_state(desired: GitDesiredState, environment: Environment, service: str) -> CommittedState:
    """Read the tip (fetched first, when the repository has a remote); GitOpsError when it cannot be."""
    repository = desired.repository(environment).open()
    repository.fetch()
    tip = repository.tip()
    objects: dict[str, list[Manifest]] = {}
    problems: dict[str, str] = {}
    if tip is None:
        return CommittedState(None, objects, problems)
    prefix = folder(environment.gitops, environment.name)
    for cluster in environment.clusters:
        path = manifest_path(prefix, cluster.name, service)
        content = repository.read(tip, path)
        if content is None:
            continue
        try:
            objects[cluster.name] = load(content, where=path)
        except CommittedManifestError as exc:
            problems[cluster.name] = str(exc)
    return CommittedState(tip, objects, problems)


def cluster_drift(client: KubeClient, cluster: str, committed: Sequence[Manifest]) -> ClusterDrift:
    """Every committed object of one cluster read live (a GET each) and compared field by field."""
    live = {object_name(obj): read_live(client, obj) for obj in committed}
    drifted = [d for d in set_drift(committed, live) if d.drifted]
    state = DriftState.DRIFTED if drifted else DriftState.IN_SYNC
    return ClusterDrift(cluster, state, drifted, checked=len(committed))


def unknown(cluster: str, error: str) -> ClusterDrift:
    return ClusterDrift(cluster, DriftState.UNKNOWN, error=error)


def placeholder(cluster: str, committed: CommittedState, active: Deployment | None) -> ClusterDrift | None:
    """The answer for a cluster that needs no read (rolling out, nothing committed, unreadable file)."""
    if active is not None:
        return ClusterDrift(cluster, DriftState.ROLLING_OUT)
    if cluster in committed.problems:
        return unknown(cluster, committed.problems[cluster])
    if cluster not in committed.objects:
        return ClusterDrift(cluster, DriftState.NOT_COMMITTED)
    return None


def overall(clusters: Sequence[ClusterDrift]) -> DriftState:
    states = {c.state for c in clusters}
    for state in (DriftState.ROLLING_OUT, DriftState.DRIFTED, DriftState.UNKNOWN):
        if state in states:
            return state
    if states and states <= {DriftState.NOT_COMMITTED}:
        return DriftState.NOT_COMMITTED
    return DriftState.IN_SYNC


def explain(latest: Deployment | None) -> str | None:
    """Why the clusters may knowingly differ from the commit: its deployment did not finish."""
    failed = {Phase.ROLLED_BACK.value, Phase.ABORTED.value, Phase.FAILED.value}
    if latest is None or latest.phase not in failed or latest.gitops_commit is None:
        return None
    return (
        f"the deployment that committed it ({str(latest.id)[:8]}) ended {latest.phase}: "
        "its clusters were left on the release before it"
    )


def active_rollout(session: Session, service: str, environment: str) -> Deployment | None:
    return repo.latest_deployment(session, service, environment, phases=ACTIVE_PHASES)


def rollout_view(active: Deployment | None) -> dict[str, str] | None:
    return None if active is None else {"deployment": str(active.id), "phase": active.phase}


def service_drift(
    session: Session,
    service: str,
    environment: Environment,
    *,
    desired: GitDesiredState,
    connect: Connect,
    timeout: float,
) -> ServiceDrift:
    """Each cluster of `environment` against `service`'s committed files, read in parallel with one deadline.
    A GitOps repository that cannot be read raises GitOpsError (naming it)."""
    committed = committed_state(desired, environment, service)
    active = active_rollout(session, service, environment.name)
    answers = check_clusters(environment.clusters, committed, active, connect=connect, timeout=timeout)
    clusters = [answers[c.name] for c in environment.clusters]
    return ServiceDrift(
        service,
        environment.name,
        committed.commit,
        overall(clusters),
        clusters,
        rollout=rollout_view(active),
        note=explain(repo.latest_deployment(session, service, environment.name)),
    )


def check_clusters(
    clusters: Sequence[ClusterConfig],
    committed: CommittedState,
    active: Deployment | None,
    *,
    connect: Connect,
    timeout: float,
) -> Mapping[str, ClusterDrift]:
    answers = {c.name: placeholder(c.name, committed, active) for c in clusters}
    to_read = [c for c in clusters if answers[c.name] is None]
    read = gather(
        to_read,
        lambda c: cluster_drift(connect(c), c.name, committed.objects[c.name]),
        lambda c, error: unknown(c.name, error),
        timeout=timeout,
    )
    return {name: answer or read[name] for name, answer in answers.items()}


# --- diff: rendered ↔ committed ↔ live ------------------------------------------------------------------


@dataclass(frozen=True)
class ObjectComparison:
    """One object of one cluster in the three places it can be: rendered by HEAD's templates now, held by
    the last commit, run live. An empty diff (or a drift with nothing in it) means that pair agrees."""

    object: str
    rendered: bool
    committed: bool | None  # None: nothing committed for this cluster at all
    live: bool
    rendered_vs_committed: str  # unified diff, committed → rendered: what the next deploy would commit
    committed_vs_live: ObjectDrift | None  # drift; None when the object is not committed
    rendered_vs_live: str  # unified diff, live → rendered: what applying the rendered object would change

    @property
    def differs(self) -> bool:
        drifted = self.committed_vs_live is not None and self.committed_vs_live.drifted
        # Without a commit, rendered against live is the only comparison there is.
        unreconciled = self.committed is None and bool(self.rendered_vs_live)
        return bool(self.rendered_vs_committed) or drifted or unreconciled

    def columns(self) -> tuple[str, str]:
        """The rendered↔committed and committed↔live verdicts, in words."""
        if self.committed is None:
            versus_commit = "never committed"
        elif not self.rendered:
            versus_commit = "no longer rendered"
        elif not self.committed:
            versus_commit = "new, not committed"
        else:
            versus_commit = "changed" if self.rendered_vs_committed else "same"
        drift = self.committed_vs_live
        if drift is None:
            versus_live = "differs from rendered" if self.rendered_vs_live else "same as rendered"
        elif drift.missing:
            versus_live = "missing"
        elif drift.fields:
            versus_live = f"drifted ({drift.count} field{'s' if drift.count != 1 else ''})"
        else:
            versus_live = "in sync"
        return versus_commit, versus_live

    def to_json(self) -> dict[str, Any]:
        return {
            "rendered": self.rendered,
            "committed": self.committed,
            "live": self.live,
            "rendered_vs_committed": self.rendered_vs_committed,
            "committed_vs_live": None if self.committed_vs_live is None else self.committed_vs_live.to_json(),
            "rendered_vs_live": self.rendered_vs_live,
        }


def compare_cluster(
    client: KubeClient, rendered: Sequence[Manifest], committed: Sequence[Manifest] | None
) -> list[ObjectComparison]:
    """Every object rendered or committed for one cluster (rendered order, then what only the commit has),
    each read live once and compared three ways."""
    want = {object_name(o): o for o in rendered}
    held = {object_name(o): o for o in committed or []}
    delegated = delegated_fields(committed or [])
    out = []
    for name in [*want, *(n for n in held if n not in want)]:
        live = read_live(client, want.get(name) or held[name])
        out.append(
            ObjectComparison(
                object=name,
                rendered=name in want,
                committed=None if committed is None else name in held,
                live=live is not None,
                rendered_vs_committed=""
                if committed is None
                else manifest_diff(held.get(name), want.get(name), "committed", "rendered", name),
                committed_vs_live=None
                if name not in held
                else object_drift(held[name], live, delegated=delegated.get(name, frozenset())),
                rendered_vs_live=object_diff(want[name], live, label=name) if name in want else "",
            )
        )
    return out
