"""The live channel: server-sent events saying "something changed, fetch again" (`GET /live`).

Whatever drives a rollout — this server's threads, or workers in other processes on Postgres — writes every
step, weight change, measurement and phase change to the audit trail (`deployment_events`) in the
transaction that makes it, so the audit trail is the one change feed that sees all of them. The stream reads
the newest event id (of everything, or of one deployment) every POLL_SECONDS — one indexed aggregate — and
sends an event `changed` whose id is that event id when it moved. Pages do not receive HTML over the stream:
an element listens with `hx-trigger="sse:changed"` and fetches its fragment again, so a fragment is one
route that renders the same template as the full page, and a client that missed events loses nothing.

The page tells the stream which event it was rendered at (`?after=`), so a change between rendering and
connecting is still announced; a reconnecting browser sends `Last-Event-ID`, which wins. A stream ends after
STREAM_SECONDS and the browser reconnects (htmx's SSE extension does, with backoff): each connection is
authenticated afresh, so a revoked session stops receiving. It also ends when the server is stopping
(`app.state.stopping`, set by `serve`), since uvicorn's graceful shutdown waits for open responses.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import Depends, Query, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from orchestrator.server.dashboard.pages import page_router
from orchestrator.store import repository as repo
from orchestrator.store.models import DeploymentEvent

POLL_SECONDS = 0.5
STREAM_SECONDS = 300.0
EVENT = "changed"

router = page_router()


def newest_event(sessions: sessionmaker[Session], deployment_id: uuid.UUID | None = None) -> int:
    """The id of the newest audit event (of one deployment); 0 when there is none. Pages render it as the
    `after` of their stream."""
    query = select(func.max(DeploymentEvent.id))
    if deployment_id is not None:
        query = query.where(DeploymentEvent.deployment_id == deployment_id)
    with sessions() as session:
        return int(session.scalar(query) or 0)


def watched_deployment(
    request: Request,
    deployment: Annotated[str | None, Query(min_length=4, max_length=36, pattern=r"^[0-9a-fA-F-]+$")] = None,
) -> uuid.UUID | None:
    """The deployment a stream follows (404 before the stream starts when there is none)."""
    if deployment is None:
        return None
    with request.app.state.sessions() as session:
        return repo.get_deployment(session, deployment).id


@router.get("/live", response_class=EventSourceResponse)
async def live(
    request: Request,
    watched: Annotated[uuid.UUID | None, Depends(watched_deployment)],
    after: Annotated[int, Query(ge=0, le=2**62)] = 0,
) -> AsyncIterator[ServerSentEvent]:
    """`changed` events as the audit trail (of `?deployment=`, or of every deployment) grows."""
    sessions = request.app.state.sessions
    resumed = request.headers.get("last-event-id", "")
    seen = int(resumed) if resumed.isdigit() else after
    ends = time.monotonic() + STREAM_SECONDS
    stopping = getattr(request.app.state, "stopping", None)  # `serve` sets it: the server is shutting down
    while time.monotonic() < ends and not await request.is_disconnected():
        if stopping is not None and stopping():
            return
        newest = await anyio.to_thread.run_sync(newest_event, sessions, watched)
        if newest != seen:
            seen = newest
            yield ServerSentEvent(event=EVENT, data=str(newest), id=str(newest))
        await anyio.sleep(POLL_SECONDS)
