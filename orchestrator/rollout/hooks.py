"""A pipeline's pre-rollout hooks (Flagger's pre-rollout webhooks): asked before anything happens.

Each `hooks.preRollout` entry is POSTed the deployment as JSON (signed `X-Signature: sha256=<hex>` when it
has a `secretEnv`) before the desired state is committed or any cluster touched. An answer that is not 2xx,
a timeout or an unreachable endpoint is tried again (3 tries, 1 s then 2 s apart, on the engine's clock);
after the last, the rollout stops, Failed, naming the hook and what it answered. Post-rollout and
post-promotion hooks never stop anything: they are deliveries of the notifier (`notify/`), retried and
recorded like a notification.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import requests

from orchestrator.config.pipeline import Hook
from orchestrator.outbound.hooks import call_hook
from orchestrator.outbound.send import DeliveryError

ATTEMPTS = 3
FIRST_WAIT_SECONDS = 1.0


def run_pre_rollout(
    hooks: Sequence[Hook], fields: dict[str, Any], *, sleep: Callable[[float], None]
) -> str | None:
    """Ask every pre-rollout hook in order; None when all answered 2xx, else why the rollout must stop."""
    with requests.Session() as http:
        for hook in hooks:
            for attempt in range(1, ATTEMPTS + 1):
                try:
                    call_hook(http, "preRollout", hook, fields)
                    break
                except DeliveryError as exc:
                    if attempt == ATTEMPTS:
                        return f"{exc} (after {ATTEMPTS} tries); nothing was committed or applied"
                    sleep(FIRST_WAIT_SECONDS * 2 ** (attempt - 1))
    return None
