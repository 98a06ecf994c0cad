"""A pipeline's post-rollout and post-promotion hooks, delivered by the notifier like a notification.

`postRollout` hooks hear every rollout's end (Succeeded, RolledBack, Aborted, Failed); `postPromotion` hooks
hear a release that Succeeded. A webhook hook is POSTed the same JSON a generic webhook gets, with the hook's
stage and name, signed when it has a `secretEnv`; the built-in `cloudflarePurge` purges Cloudflare's cache
for the hosts the service serves (`POST /client/v4/zones/{zone_id}/purge_cache`, `{"hosts": [...]}`, bearer
token from `tokenEnv`). Failures are retried and recorded; they never change the rollout's outcome.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from typing import Any

import requests

from orchestrator.config import Pipeline
from orchestrator.config.pipeline import CloudflarePurge, Hook
from orchestrator.outbound.hooks import call_hook
from orchestrator.outbound.send import DeliveryError, post

HOOK, CLOUDFLARE = "hook", "cloudflare"
ENDINGS = frozenset({"on-succeeded", "on-rolled-back", "on-failed"})


def hook_key(stage: str, hook: Hook) -> str:
    return f"{stage}:{hook.name}"


def owed_hooks(pipeline: Pipeline, trigger: str | None) -> list[tuple[str, str]]:
    """(destination key, kind) of each hook a phase change with `trigger` owes."""
    staged: list[tuple[str, Hook]] = []
    if trigger in ENDINGS:
        staged += [("postRollout", h) for h in pipeline.hooks.post_rollout]
    if trigger == "on-succeeded":
        staged += [("postPromotion", h) for h in pipeline.hooks.post_promotion]
    return [(hook_key(stage, h), CLOUDFLARE if h.cloudflare_purge else HOOK) for stage, h in staged]


def hook_named(pipeline: Pipeline, key: str) -> tuple[str, Hook]:
    for stage, hooks in (
        ("postRollout", pipeline.hooks.post_rollout),
        ("postPromotion", pipeline.hooks.post_promotion),
    ):
        for hook in hooks:
            if hook_key(stage, hook) == key:
                return stage, hook
    raise DeliveryError(f"{key}: no longer a hook of pipeline {pipeline.service}")


def served_hosts(sets: Iterable[Mapping[str, Any]]) -> list[str]:
    """The public hosts the service serves, in every cluster: the hosts of its VirtualServices bound to a
    gateway (the mesh-internal `*.svc.cluster.local` names and wildcards are not what a CDN caches)."""
    hosts: dict[str, None] = {}
    for rendered in sets:
        for obj in rendered.get("objects") or []:
            spec = obj.get("spec") or {}
            if obj.get("kind") != "VirtualService" or not [
                g for g in spec.get("gateways") or [] if g != "mesh"
            ]:
                continue
            for host in spec.get("hosts") or []:
                name = str(host)
                if "." in name and not name.startswith("*") and not name.endswith(".svc.cluster.local"):
                    hosts.setdefault(name, None)
    return list(hosts)


def send_hook(
    http: requests.Session, stage: str, hook: Hook, payload: dict[str, Any], *, hosts: list[str]
) -> None:
    """One attempt at a post hook; DeliveryError naming the hook, never its URL or token."""
    destination = f"{stage} hook {hook.name}"
    if hook.cloudflare_purge is not None:
        purge(
            http,
            hook.cloudflare_purge,
            hook.cloudflare_purge.hosts or hosts,
            destination=destination,
            timeout=hook.timeout,
        )
        return
    call_hook(http, stage, hook, payload)


def purge(
    http: requests.Session, config: CloudflarePurge, hosts: list[str], *, destination: str, timeout: float
) -> None:
    if not hosts:
        raise DeliveryError(f"{destination}: no hosts to purge (the service's Gateways serve none)")
    token = os.environ.get(config.token_env, "")
    if not token:
        raise DeliveryError(f"{destination}: the variable {config.token_env} is not set")
    url = f"{config.api_url.rstrip('/')}/client/v4/zones/{config.zone_id}/purge_cache"
    body = json.dumps({"hosts": hosts}).encode()
    post(
        http,
        url,
        body,
        destination=destination,
        headers={"Authorization": f"Bearer {token}"},
        timeout=timeout,
    )
