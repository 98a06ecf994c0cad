"""What a deployment was asked to do, as one typed record (stored in the deployment's `config` column).

Validated on the way in and on the way out of the store, so a request written by an older version, or
edited by hand, is refused with a message instead of being read key by key with defaults.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from orchestrator.errors import OrchestratorError
from orchestrator.store.models import DeploymentKind

# What each kind of deployment must name (and the others must not): a promotion and a rollback roll out a
# recorded release unchanged, taken from the deployment that verified it (promote) or whose commit they
# restore (rollback); a rollback also names the deployment it undoes.
_NAMED_BY_KIND = {
    DeploymentKind.DEPLOY: frozenset[str](),
    DeploymentKind.PROMOTE: frozenset({"release_id", "source_deployment"}),
    DeploymentKind.ROLLBACK: frozenset({"release_id", "source_deployment", "undoes"}),
}


class Trigger(BaseModel):
    """What set a deployment off when no person ran a command: a webhook delivery (and the rollout request
    it queued), for the audit trail and `history`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Literal["github", "registry"]
    event: str  # push, registry push...
    delivery: str  # the delivery id (X-GitHub-Delivery, or the registry delivery's)
    request: int  # the rollout request (rollout_requests.id) the worker turned into this deployment
    commit: str | None = None  # the commit the event names


class DeployRequest(BaseModel):
    """One `deploy`, `promote` or `rollback` (or a `retry` of one): which service goes where, with what image,
    values and strategy, by whom."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    service: str
    environment: str
    git_commit: str
    image: str | None = None  # --image: deploy this reference instead of the built one
    digest: str | None = None  # the built image's digest, when `orchestrator build` recorded one
    built_repository: str | None = None  # where the build pushed it (for clusters without a registry)
    overrides: dict[str, Any] = Field(default_factory=dict)  # --set values
    strategy: Literal["rolling"] | None = None  # force a plain rolling update; default: the pipeline's
    committed_at: datetime | None = None  # the commit's time (lead time for changes starts there)
    actor: str | None = None
    user_id: uuid.UUID | None = None  # the acting user's row (none for the local login of an empty store)
    kind: DeploymentKind = DeploymentKind.DEPLOY
    release_id: uuid.UUID | None = None  # promote, rollback: the recorded release, rolled out unchanged
    source_deployment: uuid.UUID | None = None  # promote: where it Succeeded; rollback: the state it restores
    undoes: uuid.UUID | None = None  # rollback: the deployment it undoes

    trigger: Trigger | None = None  # the webhook that asked for it (None: a command or an API call)

    @model_validator(mode="after")
    def _names_what_its_kind_needs(self) -> DeployRequest:
        named = {
            key for key in ("release_id", "source_deployment", "undoes") if getattr(self, key) is not None
        }
        needed = _NAMED_BY_KIND[self.kind]
        if named != needed:
            missing, extra = sorted(needed - named), sorted(named - needed)
            parts = [f"needs {', '.join(missing)}"] if missing else []
            parts += [f"does not take {', '.join(extra)}"] if extra else []
            raise ValueError(f"a {self.kind.value} request {' and '.join(parts)}")
        return self

    def to_record(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_record(cls, record: dict[str, Any] | None, *, deployment: object) -> DeployRequest:
        try:
            return cls.model_validate(record or {})
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "request"
            raise OrchestratorError(
                f"deployment {deployment}: its stored request is not valid ({where}: {first['msg']})"
            ) from None
