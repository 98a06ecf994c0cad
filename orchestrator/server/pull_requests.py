"""GitHub's `pull_request` event for the pull requests of pull-request mode: a merge starts the rollout of
the merged desired state; a close without a merge cancels the deployment waiting on it.

Reached only after the signature was verified (`webhooks.py`). One transaction records the delivery under
its id (a redelivery loses at the unique index: 200 `duplicate`, nothing moves), finds the deployment
AwaitingMerge on that pull request (the repository and number its control state recorded when the pull
request was opened), moves it through the state machine — `merged` (AwaitingMerge → Progressing, the merge
commit recorded for the driver to read back and roll out) or `pr_closed` (AwaitingMerge → Aborted, nothing
touched) — and queues its rollout job. A pull request no deployment waits on (already merged or closed, or
not the orchestrator's) is recorded as ignored with that reason: a replayed merge under a new delivery id
finds the deployment no longer waiting and rolls nothing out a second time.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from orchestrator.logs import get_logger
from orchestrator.rollout.control import ControlState
from orchestrator.store import repository as repo
from orchestrator.store.models import DeliveryOutcome, Deployment, Phase, WebhookDelivery
from orchestrator.store.transitions import Event

log = get_logger(__name__)

_SHA = re.compile(r"^[0-9a-f]{40}$")
_DELIVERIES = WebhookDelivery.metadata.tables[WebhookDelivery.__tablename__]
ACTOR = "github"


@dataclass(frozen=True)
class PullRequestEvent:
    action: str
    repository: str | None
    number: int | None
    merged: bool
    merge_commit: str | None
    base: str | None
    by: str  # who merged or closed it (GitHub's login), for the audit trail

    @classmethod
    def of(cls, payload: dict[str, Any]) -> PullRequestEvent:
        pull = payload.get("pull_request") if isinstance(payload.get("pull_request"), dict) else {}
        assert isinstance(pull, dict)
        repository = payload.get("repository")
        merged_by = pull.get("merged_by") if isinstance(pull.get("merged_by"), dict) else None
        sender = payload.get("sender") if isinstance(payload.get("sender"), dict) else None
        login = (merged_by or sender or {}).get("login")
        base = pull.get("base")
        number = pull.get("number", payload.get("number"))
        return cls(
            action=str(payload.get("action") or ""),
            repository=repository.get("full_name") if isinstance(repository, dict) else None,
            number=number if isinstance(number, int) and not isinstance(number, bool) else None,
            merged=pull.get("merged") is True,
            merge_commit=pull.get("merge_commit_sha")
            if isinstance(pull.get("merge_commit_sha"), str)
            else None,
            base=base.get("ref") if isinstance(base, dict) else None,
            by=login if isinstance(login, str) else "someone",
        )

    @property
    def name(self) -> str:
        return f"{self.repository}#{self.number}"


@dataclass(frozen=True)
class Settled:
    outcome: DeliveryOutcome | None  # None: a redelivery, nothing done
    reason: str | None
    deployment: uuid.UUID | None = None


def _waiting_on(session: Session, event: PullRequestEvent) -> Deployment | None:
    """The deployment AwaitingMerge on this pull request, locked for the move (Postgres: FOR UPDATE)."""
    # `of=`: the release is joined eagerly, and Postgres will not lock the nullable side of an outer join.
    waiting = select(Deployment).where(Deployment.phase == Phase.AWAITING_MERGE.value)
    candidates = session.scalars(waiting.with_for_update(of=Deployment))
    for deployment in candidates:
        pull = ControlState.of(deployment.control).pull_request
        if (
            pull is not None
            and pull.number == event.number
            and event.repository is not None
            and pull.repository.lower() == event.repository.lower()
        ):
            return deployment
    return None


def settle(session: Session, jobs: Any, delivery: str, event: PullRequestEvent) -> Settled:
    """Record the delivery and do what it says, in the session's transaction (IntegrityError: redelivered)."""
    deployment: Deployment | None = None
    reason: str | None = None
    outcome = DeliveryOutcome.IGNORED
    if event.action != "closed":
        reason = f"pull request action {event.action!r}: only closed (merged or not) moves a deployment"
    elif event.number is None or event.repository is None:
        reason = "the event names no pull request number or repository"
    else:
        deployment = _waiting_on(session, event)
        if deployment is None:
            reason = (
                f"no deployment waits on pull request {event.name} (already merged or closed, or not one the "
                "orchestrator opened)"
            )
        elif event.merged and (event.merge_commit is None or not _SHA.match(event.merge_commit)):
            reason = f"pull request {event.name} is merged but names no merge commit"
            deployment = None
    delivery_row: dict[str, str | None] = {
        "source": "github",
        "delivery_id": delivery,
        "event": "pull_request",
        "repository": event.repository[:512] if event.repository else None,
    }
    if deployment is None:
        session.execute(insert(_DELIVERIES).values(**delivery_row, outcome=outcome.value, reason=reason))
        return Settled(outcome, reason)
    control = ControlState.of(deployment.control)
    pull = control.pull_request
    assert pull is not None
    if event.merged:
        assert event.merge_commit is not None
        pull.merge_commit, pull.merged_by = event.merge_commit, event.by
        deployment.control = control.to_record()
        reason = f"pull request {event.name} merged by {event.by} as {event.merge_commit[:12]}: rolling out"
        repo.set_phase(
            session, deployment, Phase.PROGRESSING, event=Event.MERGED, actor=ACTOR, message=reason
        )
        repo.append_event(
            session,
            deployment,
            "pull_request_merged",
            reason,
            actor=ACTOR,
            data={"pull_request": pull.number, "merge_commit": event.merge_commit, "merged_by": event.by},
        )
        outcome = DeliveryOutcome.QUEUED
        jobs.enqueue_rollout_in(session, deployment.id, reason=f"pull request {event.name} merged")
    else:
        reason = f"pull request {event.name} was closed without merging by {event.by}; nothing was rolled out"
        repo.set_phase(session, deployment, Phase.ABORTED, event=Event.PR_CLOSED, actor=ACTOR, message=reason)
        deployment.reason = "PullRequestClosed"
        repo.append_event(
            session,
            deployment,
            "pull_request_closed",
            reason,
            actor=ACTOR,
            data={"pull_request": pull.number, "closed_by": event.by},
        )
        outcome = DeliveryOutcome.CANCELLED
    session.execute(insert(_DELIVERIES).values(**delivery_row, outcome=outcome.value, reason=reason))
    log.info(
        "pull_request_settled",
        delivery=delivery,
        pull_request=event.name,
        deployment=str(deployment.id),
        outcome=outcome.value,
    )
    return Settled(outcome, reason, deployment.id)
