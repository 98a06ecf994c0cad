"""Where the webhook receiver's secrets and the allowed repository come from: the environment only.

Secrets never come from the repository (a push could change them). Each is a variable holding the secret
or a variable naming a file that holds it (`…_FILE`, for secrets mounted from a secret store); setting both
is refused, so it is never a guess which one is in force.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.errors import ConfigError

GITHUB_SECRET_ENV = "ORCHESTRATOR_GITHUB_WEBHOOK_SECRET"
REGISTRY_SECRET_ENV = "ORCHESTRATOR_REGISTRY_WEBHOOK_SECRET"
GITHUB_REPOSITORY_ENV = "ORCHESTRATOR_GITHUB_REPOSITORY"  # owner/name a push must come from


@dataclass(frozen=True)
class WebhookSettings:
    github_secret: bytes | None = field(default=None, repr=False)
    registry_secret: bytes | None = field(default=None, repr=False)
    github_repository: str | None = None  # owner/name, compared case-insensitively (GitHub's rule)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> WebhookSettings:
        env = os.environ if environ is None else environ
        repository = (env.get(GITHUB_REPOSITORY_ENV) or "").strip() or None
        if repository is not None and repository.count("/") != 1:
            raise ConfigError(f"{GITHUB_REPOSITORY_ENV}={repository!r} is not owner/name")
        return cls(
            github_secret=_secret(env, GITHUB_SECRET_ENV),
            registry_secret=_secret(env, REGISTRY_SECRET_ENV),
            github_repository=repository,
        )


def _secret(env: Mapping[str, str], name: str) -> bytes | None:
    value, file = env.get(name), env.get(f"{name}_FILE")
    if value and file:
        raise ConfigError(f"set {name} or {name}_FILE, not both")
    if file:
        try:
            text = Path(file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{name}_FILE={file}: cannot read it: {exc.strerror or exc}") from None
        if not text:
            raise ConfigError(f"{name}_FILE={file}: the file is empty")
        return text.encode()
    return value.encode() if value else None
