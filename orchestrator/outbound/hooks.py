"""One call of a pipeline's webhook hook, at any stage (the engine's pre-rollout hooks, the notifier's post
hooks): the hook's stage and name with the caller's fields as JSON, signed when the hook has a `secretEnv`."""

from __future__ import annotations

import json
import os
from typing import Any

import requests

from orchestrator.config.pipeline import Hook
from orchestrator.outbound.send import DeliveryError, post
from orchestrator.outbound.signing import SIGNATURE_HEADER, signature


def hook_body(stage: str, hook: Hook, fields: dict[str, Any]) -> bytes:
    body = {"hook": stage, "name": hook.name, **fields}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def call_hook(http: requests.Session, stage: str, hook: Hook, fields: dict[str, Any]) -> None:
    """One attempt at a webhook hook (any stage); DeliveryError naming the hook unless it answered 2xx."""
    destination = f"{stage} hook {hook.name}"
    url = hook.url or os.environ.get(str(hook.url_env), "")
    if not url:
        raise DeliveryError(f"{destination}: the variable {hook.url_env} is not set")
    body = hook_body(stage, hook, fields)
    headers: dict[str, str] = {}
    if hook.secret_env is not None:
        secret = os.environ.get(hook.secret_env, "")
        if not secret:
            raise DeliveryError(f"{destination}: the variable {hook.secret_env} is not set")
        headers[SIGNATURE_HEADER] = signature(body, secret)
    post(http, url, body, destination=destination, headers=headers, timeout=hook.timeout)
