"""The server's jobs: a durable queue on Postgres (workers run them), the server's own threads on SQLite."""

from __future__ import annotations

from fastapi import FastAPI

from orchestrator.config import Project
from orchestrator.runtime import notify_flush_seconds, start_notifier
from orchestrator.server.jobs import InProcessJobs, QueueJobs, RolloutJobs
from orchestrator.server.runner import JobRunner
from orchestrator.server.settings import ServerSettings
from orchestrator.store import queue


def attach_jobs(app: FastAPI, settings: ServerSettings) -> None:
    """Set `app.state.jobs` and `app.state.webhooks`; on SQLite, run the jobs here, resuming at start the
    requests the last run left unfinished, and hand rollouts back (resumable) at shutdown."""
    app.state.webhooks = settings.webhooks
    sessions = app.state.sessions
    jobs: RolloutJobs
    if queue.is_postgres(settings.database_url):
        jobs = QueueJobs(sessions)
    else:
        runner = JobRunner(settings.root, settings.state_dir, settings.database_url, sessions)
        in_process = InProcessJobs(runner, concurrency=settings.job_threads)
        app.router.on_startup.append(in_process.resume_unfinished)
        jobs = in_process
        # The server drives rollouts here, so it tells their phase changes too (as a worker does).
        notifier = start_notifier(Project(settings.root), sessions)
        if notifier is not None:
            app.router.on_shutdown.append(lambda: notifier.stop(flush_seconds=notify_flush_seconds()))
    app.state.jobs = jobs
    app.router.on_shutdown.append(jobs.close)
