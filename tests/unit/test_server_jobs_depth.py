"""The server's own rollout threads (SQLite) count their jobs as the queue does: queued, then picked."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

import pytest

from orchestrator.server.jobs import InProcessJobs
from orchestrator.server.runner import Done, Outcome, RetryLater


class GatedRunner:
    """Stands in for JobRunner (our own class, not a client library): a rollout job waits for `gate`,
    a request job asks to be retried later once, then is done."""

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self.gate = threading.Event()
        self.started = threading.Semaphore(0)
        self.tries: dict[int, int] = {}

    def run_rollout(self, deployment_id: uuid.UUID) -> Outcome:
        self.started.release()
        self.gate.wait(timeout=30)
        return Done("driven")

    def run_request(self, request_id: int) -> Outcome:
        self.tries[request_id] = self.tries.get(request_id, 0) + 1
        return RetryLater(0.5, "wait") if self.tries[request_id] == 1 else Done("deployed")

    def stop(self) -> None:
        self.stopping.set()


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "never happened"
        time.sleep(0.01)


def test_jobs_are_queued_then_picked_then_gone_and_a_retry_waits_queued() -> None:
    runner = GatedRunner()
    jobs = InProcessJobs(runner, concurrency=1)  # type: ignore[arg-type]  # duck-typed JobRunner
    try:
        assert jobs.depth() == {}
        jobs.enqueue_rollout(uuid.uuid4(), reason="first")
        assert runner.started.acquire(timeout=10)
        jobs.enqueue_rollout(uuid.uuid4(), reason="second")  # one thread: waits behind the first
        assert jobs.depth() == {("rollout", "picked"): 1, ("rollout", "queued"): 1}
        jobs.check_ready()
        runner.gate.set()
        assert jobs.wait_idle(10)
        assert jobs.depth() == {}

        jobs._submit(("request", 7), attempt=1)
        wait_until(lambda: runner.tries.get(7) == 1)
        wait_until(lambda: jobs.depth() == {("rollout-request", "queued"): 1})  # its retry, waiting
        assert jobs.wait_idle(10) and runner.tries[7] == 2
        assert jobs.depth() == {}
    finally:
        jobs.close()
    with pytest.raises(RuntimeError, match="stopping"):
        jobs.check_ready()
