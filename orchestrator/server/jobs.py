"""How the server hands a rollout to something that drives it: the jobs interface and its two runners.

A webhook records rollout requests and queues a job for each; a REST call that creates a deployment
(recorded with `RolloutEngine.create(..., leased=False)`, so any process may take it) queues a job that
drives it. Jobs are safe to run twice (`runner.py`).

- **Postgres** (`QueueJobs`): jobs go to pgqueuer's durable queue, in the same transaction as the rows
  they are for, and `orchestrator worker` processes on any number of machines run them.
- **SQLite**, the embedded default (`InProcessJobs`): there is no queue to share, so the server runs the
  jobs on its own threads, retrying later what must wait; when it starts it takes up the requests left
  unfinished by its last run (their rows say so), so a stopped server loses nothing either.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Protocol

from sqlalchemy import event, text
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.orm import Session, sessionmaker

from orchestrator.logs import get_logger
from orchestrator.server.runner import (
    MAX_FAILURE_RETRIES,
    Done,
    JobRunner,
    Outcome,
    RetryLater,
    failure_backoff,
    unfinished_requests,
)
from orchestrator.store import queue

log = get_logger(__name__)


class RolloutJobs(Protocol):
    def enqueue_rollout(self, deployment_id: uuid.UUID, *, reason: str) -> None:
        """Drive a recorded deployment (created with `leased=False`)."""

    def enqueue_requests(self, session: Session, request_ids: Sequence[int]) -> None:
        """Queue each rollout request's job with the session's transaction: queued if and only if it
        commits."""

    def depth(self) -> dict[tuple[str, str], int]:
        """The jobs not done yet, by (job kind, status): `queued` (waiting, or to be retried) and
        `picked` (running), pgqueuer's names, on either runner."""

    def check_ready(self) -> None:
        """Raise when jobs cannot be queued now (the queue unreachable or not installed, or closed)."""

    def enqueue_rollout_in(self, session: Session, deployment_id: uuid.UUID, *, reason: str) -> None:
        """Drive a deployment, queued with the session's transaction (a merged pull request's)."""

    def close(self) -> None: ...


# The in-process runner's job kinds, under the queue's entrypoint names (one vocabulary in /metrics).
ENTRYPOINTS = {"request": queue.REQUEST_JOB, "rollout": queue.ROLLOUT_JOB}


def request_payload(request_id: int) -> bytes:
    return json.dumps({"request": request_id}).encode()


def rollout_payload(deployment_id: uuid.UUID) -> bytes:
    return json.dumps({"deployment": str(deployment_id)}).encode()


class QueueJobs:
    """Jobs on pgqueuer's durable queue in Postgres, for `orchestrator worker` processes to run."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def enqueue_rollout(self, deployment_id: uuid.UUID, *, reason: str) -> None:
        with self.sessions.begin() as session:
            queue.enqueue(session.connection(), queue.ROLLOUT_JOB, rollout_payload(deployment_id))
        log.info("rollout_enqueued", deployment=str(deployment_id), reason=reason)

    def enqueue_requests(self, session: Session, request_ids: Sequence[int]) -> None:
        payloads = [request_payload(i) for i in request_ids]
        queue.enqueue_many(session.connection(), queue.REQUEST_JOB, payloads)

    def enqueue_requests_on(self, enqueuer: queue.Enqueuer, request_ids: Sequence[int]) -> None:
        """`enqueue_requests` in the open transaction of a psycopg connection of our own (the webhook
        writer's)."""
        enqueuer.enqueue_many(queue.REQUEST_JOB, [request_payload(i) for i in request_ids])

    def depth(self) -> dict[tuple[str, str], int]:
        # pgqueuer's own statistics query (by entrypoint, priority and status), summed over priorities.
        with self.sessions() as session:
            rows = session.execute(text(queue.builders()["qbq"].build_queue_size_query())).mappings().all()
        counts: Counter[tuple[str, str]] = Counter()
        for row in rows:
            counts[(str(row["entrypoint"]), str(row["status"]))] += int(row["count"])
        return dict(counts)

    def check_ready(self) -> None:
        """The queue's table answers: the database is reachable and the queue installed."""
        from psycopg.errors import UndefinedTable

        try:
            self.depth()
        except ProgrammingError as exc:
            if isinstance(exc.orig, UndefinedTable):
                raise queue.QueueNotInstalledError("the job queue is not installed") from exc
            raise

    def enqueue_rollout_in(self, session: Session, deployment_id: uuid.UUID, *, reason: str) -> None:
        queue.enqueue(session.connection(), queue.ROLLOUT_JOB, rollout_payload(deployment_id))
        log.info("rollout_enqueued", deployment=str(deployment_id), reason=reason)

    def close(self) -> None:
        pass


class InProcessJobs:
    """Runs each job on a thread of this process (the embedded default: no queue, no workers)."""

    def __init__(self, runner: JobRunner, *, concurrency: int = 4) -> None:
        self.runner = runner
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="rollout")
        self._timers: set[threading.Timer] = set()
        self._lock = threading.Lock()
        self._closed = False
        self.idle = threading.Condition(self._lock)
        self.pending = 0  # jobs submitted or waiting to retry, not yet done (tests wait for 0)
        self._depth: Counter[tuple[str, str]] = Counter()  # (entrypoint, queued | picked)

    def resume_unfinished(self) -> list[int]:
        """Take up the requests a previous run of the server left queued or deploying."""
        ids = unfinished_requests(self.runner.sessions)
        for request_id in ids:
            self._submit(("request", request_id), attempt=1)
        if ids:
            log.info("rollout_requests_resumed", requests=ids)
        return ids

    def enqueue_rollout(self, deployment_id: uuid.UUID, *, reason: str) -> None:
        log.info("rollout_enqueued", deployment=str(deployment_id), reason=reason)
        self._submit(("rollout", deployment_id), attempt=1)

    def enqueue_requests(self, session: Session, request_ids: Sequence[int]) -> None:
        # After the commit only: a rolled-back request has no job (as on the queue).
        ids = list(request_ids)

        def submit(_session: Session) -> None:
            for request_id in ids:
                self._submit(("request", request_id), attempt=1)

        event.listen(session, "after_commit", submit, once=True)

    def enqueue_rollout_in(self, session: Session, deployment_id: uuid.UUID, *, reason: str) -> None:
        def submit(_session: Session) -> None:
            self.enqueue_rollout(deployment_id, reason=reason)

        event.listen(session, "after_commit", submit, once=True)

    def _submit(self, job: tuple[str, object], *, attempt: int) -> None:
        with self._lock:
            if self._closed:
                return
            self.pending += 1
            self._depth[(ENTRYPOINTS[job[0]], "queued")] += 1
        self._pool.submit(self._run, job, attempt)

    def _run(self, job: tuple[str, object], attempt: int) -> None:
        entrypoint = ENTRYPOINTS[job[0]]
        with self._lock:
            self._depth[(entrypoint, "queued")] -= 1
            self._depth[(entrypoint, "picked")] += 1
        try:
            outcome = run_job(self.runner, job, attempt)
        finally:
            with self._lock:
                self._depth[(entrypoint, "picked")] -= 1
        if isinstance(outcome, RetryLater) and not self.runner.stopping.is_set():
            timer = threading.Timer(max(outcome.seconds, 0.05), self._retry, (job, attempt + 1))
            timer.daemon = True
            with self._lock:
                self._timers.add(timer)
                self._depth[(entrypoint, "queued")] += 1  # waiting to be retried, as a job on the queue does
            timer.start()
        self._finished()

    def _retry(self, job: tuple[str, object], attempt: int) -> None:
        with self._lock:
            self._timers = {t for t in self._timers if t.is_alive() and t is not threading.current_thread()}
            self._depth[(ENTRYPOINTS[job[0]], "queued")] -= 1  # _submit counts it again
        self._submit(job, attempt=attempt)

    def _finished(self) -> None:
        with self._lock:
            self.pending -= 1
            self.idle.notify_all()

    def depth(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return {key: count for key, count in self._depth.items() if count > 0}

    def check_ready(self) -> None:
        if self._closed or self.runner.stopping.is_set():
            raise RuntimeError("the server's rollout threads are stopping")

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no job is running or waiting to retry (tests)."""
        with self._lock:
            return self.idle.wait_for(lambda: self.pending == 0 and not self._timers, timeout=timeout)

    def close(self) -> None:
        """Stop: rollouts in progress stop at their next step, leases given back; they resume at start."""
        with self._lock:
            self._closed = True
            for timer in self._timers:
                timer.cancel()
            self._timers.clear()
            self._depth.clear()  # what was queued stays in the store, taken up at the next start
        self.runner.stop()
        self._pool.shutdown(wait=True, cancel_futures=True)


def run_job(runner: JobRunner, job: tuple[str, object], attempt: int) -> Outcome:
    """Run one job; an unexpected error is retried with backoff, up to MAX_FAILURE_RETRIES times."""
    kind, key = job
    if runner.stopping.is_set():  # a stopping runner starts nothing: the job stays for the next one
        return RetryLater(0.0, "stopping")
    try:
        if kind == "request":
            assert isinstance(key, int)
            outcome = runner.run_request(key)
        else:
            assert isinstance(key, uuid.UUID)
            outcome = runner.run_rollout(key)
    except Exception as exc:  # the job's record stays as it was; it is tried again
        if attempt >= MAX_FAILURE_RETRIES:
            log.exception("rollout_job_gave_up", job=kind, key=str(key), attempts=attempt)
            return Done(f"gave up after {attempt} attempts: {type(exc).__name__}: {exc}")
        log.exception("rollout_job_failed", job=kind, key=str(key), attempt=attempt)
        return RetryLater(failure_backoff(attempt), f"{type(exc).__name__}: {exc}")
    log.debug("rollout_job_ran", job=kind, key=str(key), outcome=type(outcome).__name__, reason=_why(outcome))
    return outcome


def _why(outcome: Outcome) -> str:
    return outcome.message if isinstance(outcome, Done) else outcome.reason


def retry_delay(outcome: RetryLater) -> timedelta:
    return timedelta(seconds=outcome.seconds)
