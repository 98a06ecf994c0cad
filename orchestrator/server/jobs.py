"""How the server hands a rollout to something that drives it: the jobs interface, and the in-process runner.

A request or a webhook creates a deployment (recorded, leased to nobody yet) and enqueues a job that drives
it; the job is safe to run twice because the engine resumes from the store and refuses a deployment whose
lease is live. With the embedded SQLite default the server runs the jobs itself, on a small thread pool
(`InProcessJobs`); with Postgres, workers on any number of machines take them from a durable queue.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

import structlog

log = structlog.get_logger(__name__)


class RolloutJobs(Protocol):
    def enqueue_rollout(self, deployment_id: uuid.UUID, *, reason: str) -> None: ...

    def close(self) -> None: ...


class InProcessJobs:
    """Runs each rollout job on a thread of this process (the embedded default: no queue, no workers)."""

    def __init__(self, run: Callable[[uuid.UUID], object], *, concurrency: int = 4) -> None:
        self._run = run
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="rollout")
        self.futures: dict[uuid.UUID, Future[object]] = {}

    def enqueue_rollout(self, deployment_id: uuid.UUID, *, reason: str) -> None:
        log.info("rollout_enqueued", deployment=str(deployment_id), reason=reason)
        self.futures[deployment_id] = self._pool.submit(self._guarded, deployment_id)

    def _guarded(self, deployment_id: uuid.UUID) -> object:
        try:
            return self._run(deployment_id)
        except Exception:  # the deployment's record says what happened; the thread must not die silently
            log.exception("rollout_job_failed", deployment=str(deployment_id))
            raise

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
