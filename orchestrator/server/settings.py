"""What a running server works with: the project checkout, the state folder, the state database, and the
webhook receiver's secrets."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.server.webhook_settings import WebhookSettings


@dataclass(frozen=True)
class ServerSettings:
    root: Path  # the project checkout: pipelines/, environments/, templates/
    state_dir: Path
    database_url: str
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)  # none: the webhooks answer 503
    job_threads: int = 4  # SQLite only: how many rollouts the server drives at once
