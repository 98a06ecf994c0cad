"""`orchestrator worker`: runs rollout jobs from the Postgres queue (pgqueuer), as many processes as wanted.

pgqueuer marks each job it hands out as picked by this worker and renews a heartbeat on it while it runs;
a worker that dies (SIGKILL, a lost machine) stops renewing, and another worker picks the job again once
the heartbeat is older than HEARTBEAT_TIMEOUT. The job then finds the deployment leased to the dead
worker's engine and retries until that lease (30 s) has expired, then takes it over and resumes it at its
current step: a take-over within about 35 s.

A job's body runs on a thread of the worker's own pool, one per slot (the engine is synchronous). What
must wait — the environment is held by another rollout, the lease is still live — is handed back to the
queue with `RetryRequested(delay)`, so a waiting job holds no worker slot. SIGTERM (or SIGINT): stop taking
jobs, tell running rollouts to stop at their next step boundary and give their leases back, re-queue their
jobs for another worker, and exit.
"""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from orchestrator.logs import get_logger
from orchestrator.server.jobs import retry_delay, run_job
from orchestrator.server.runner import JobRunner, RetryLater
from orchestrator.store import queue, queue_driver

log = get_logger(__name__)

HEARTBEAT_TIMEOUT = timedelta(seconds=10)  # a picked job whose heartbeat is older is picked again
DEQUEUE_TIMEOUT = timedelta(seconds=5)  # poll this often even when no NOTIFY arrives


async def run_worker(runner: JobRunner, database_url: str, *, concurrency: int) -> None:
    from pgqueuer import Queries, QueueManager, RetryRequested
    from pgqueuer.models import Job

    # Queries and LISTEN on connections of their own: a dequeue never waits for the NOTIFY watcher.
    driver, connections = await queue_driver.connect(queue.conninfo(database_url))
    loop = asyncio.get_running_loop()
    # A thread per slot: asyncio's default executor has min(32, CPUs + 4) threads, which would leave jobs
    # picked (heartbeats and all) but waiting for a thread.
    threads = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="rollout-job")
    names = queue.settings()
    manager = QueueManager(Queries(driver, **queue.builders()), channel=names.channel)

    async def run(kind: str, key: object, job: Job) -> None:
        # How long the job waited for a worker once it was due (the queue's pickup latency).
        waited = (datetime.now(UTC) - job.execute_after).total_seconds()
        attempt = job.attempts + 1
        log.info("rollout_job_picked", job=kind, key=str(key), attempt=attempt, pickup_seconds=waited)
        outcome = await loop.run_in_executor(threads, run_job, runner, (kind, key), attempt)
        if isinstance(outcome, RetryLater):
            raise RetryRequested(delay=retry_delay(outcome), reason=outcome.reason[:500])

    @manager.entrypoint(queue.REQUEST_JOB)
    async def rollout_request(job: Job) -> None:
        await run("request", int(_payload(job)["request"]), job)

    @manager.entrypoint(queue.ROLLOUT_JOB)
    async def rollout(job: Job) -> None:
        await run("rollout", uuid.UUID(str(_payload(job)["deployment"])), job)

    def stop(signum: int) -> None:
        log.info("worker_stopping", signal=signal.Signals(signum).name)
        manager.shutdown.set()  # no new jobs
        # Running rollouts stop at their next step and give their leases back; their jobs go back to the
        # queue (RetryLater), for another worker.
        threading.Thread(target=runner.stop, name="hand-back", daemon=True).start()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop, signum)
    log.info("worker_started", concurrency=concurrency)
    try:
        await manager.run(
            dequeue_timeout=DEQUEUE_TIMEOUT,
            # Jobs are taken in batches of up to a quarter of the slots (pgqueuer wants at least twice the
            # batch free): a burst of pushes is picked up in a few round trips, not one per job.
            batch_size=max(1, min(10, concurrency // 4)),
            max_concurrent_tasks=concurrency,
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
        )
    finally:
        threads.shutdown(wait=True)
        for connection in connections:
            await connection.close()
    log.info("worker_stopped")


def _payload(job: Any) -> dict[str, Any]:
    data = json.loads(job.payload or b"{}")
    if not isinstance(data, dict):
        raise ValueError(f"job {job.id}: the payload is not an object")
    return data
