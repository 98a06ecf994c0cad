"""Stored rows as plain JSON-ready dicts: one shape for `-o json`, the REST API and notifications alike."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from orchestrator.store.models import ClusterDeployment, Deployment, DeploymentEvent, Release


def iso_time(value: datetime | None) -> str | None:
    """A stored moment as ISO 8601 text, None kept."""
    return value.isoformat() if value is not None else None


def release_view(release: Release) -> dict[str, Any]:
    return {
        "id": str(release.id),
        "service": release.service,
        "git_commit": release.git_commit,
        "image_repository": release.image_repository,
        "image": release.image_ref,
        "image_digest": release.image_digest,
        "manifest_hash": release.manifest_hash,
        "values_hash": release.values_hash,
        "created_at": iso_time(release.created_at),
        "created_by": release.created_by,
    }


def cluster_view(cluster: ClusterDeployment) -> dict[str, Any]:
    return {
        "cluster": cluster.cluster,
        "cloud": cluster.cloud,
        "region": cluster.region,
        "wave": cluster.wave,
        "phase": cluster.phase,
        "canary_weight": cluster.canary_weight,
        "stable_weight": cluster.stable_weight,
        "message": cluster.message,
        "updated_at": iso_time(cluster.updated_at),
    }


def deployment_view(deployment: Deployment, *, clusters: bool = True) -> dict[str, Any]:
    """The deployment with its release (and, unless `clusters=False`, the state of each of its clusters)."""
    view: dict[str, Any] = {
        "id": str(deployment.id),
        "name": deployment.name,
        "service": deployment.service,
        "environment": deployment.environment,
        "phase": deployment.phase,
        "status": deployment.status,
        "strategy": deployment.strategy,
        "kind": deployment.kind,
        "undoes": str(deployment.undoes_id) if deployment.undoes_id else None,
        "gitops_commit": deployment.gitops_commit,
        "current_step": deployment.current_step,
        "cloud_provider": deployment.cloud_provider,
        "region": deployment.region,
        "actor": deployment.actor,
        "user_id": str(deployment.user_id) if deployment.user_id else None,
        "reason": deployment.reason,
        "message": deployment.message,
        "created_at": iso_time(deployment.created_at),
        "started_at": iso_time(deployment.started_at),
        "finished_at": iso_time(deployment.finished_at),
        "release": release_view(deployment.release),
        # What set it off when no person did: the webhook's source, event, delivery id and commit.
        "trigger": (deployment.config or {}).get("trigger"),
        # Pull-request mode: the pull request its desired state waits in (or was merged from).
        "pull_request": (deployment.control or {}).get("pull_request"),
    }
    if clusters:
        view["clusters"] = [cluster_view(c) for c in deployment.clusters]
    return view


def event_view(event: DeploymentEvent) -> dict[str, Any]:
    return {
        "deployment_id": str(event.deployment_id),
        "seq": event.seq,
        "type": event.type,
        "step": event.step,
        "cluster": event.cluster,
        "message": event.message,
        "data": event.data,
        "actor": event.actor,
        "created_at": iso_time(event.created_at),
    }


def trail_view(release: Release, verified: list[Deployment]) -> dict[str, Any]:
    """A release with the environments it has been verified in (a Succeeded deployment there), in order."""
    environments: list[str] = []
    for deployment in verified:
        if deployment.environment not in environments:
            environments.append(deployment.environment)
    return {
        **release_view(release),
        "verified_in": environments,
        "trail": [
            {
                "environment": d.environment,
                "deployment": str(d.id),
                "kind": d.kind,
                "actor": d.actor,
                "gitops_commit": d.gitops_commit,
                "finished_at": iso_time(d.finished_at),
            }
            for d in verified
        ],
    }
