"""`orchestrator worker`: run rollout jobs from the Postgres queue."""

from __future__ import annotations

import click

from orchestrator.cli.db import database_url_option
from orchestrator.cli.options import root_option


@click.command("worker")
@click.option(
    "--concurrency",
    type=click.IntRange(min=2),
    default=4,
    show_default=True,
    help="Rollouts this process drives at once (at least 2: the queue hands jobs out in pairs at least).",
)
@database_url_option
@root_option
def worker_command(concurrency: int, database_url: str, root: str | None) -> None:
    """Run rollout jobs from the Postgres queue; SIGTERM stops taking jobs and leaves rollouts resumable."""
    import asyncio

    from orchestrator.config import Project
    from orchestrator.errors import ConfigError
    from orchestrator.runtime import notify_flush_seconds, start_notifier
    from orchestrator.server.runner import JobRunner
    from orchestrator.server.worker import run_worker
    from orchestrator.settings import project_root, state_dir
    from orchestrator.store import db, queue

    if not queue.is_postgres(database_url):
        raise ConfigError(
            "workers need a shared Postgres database (--database-url postgresql://…); with the embedded "
            "SQLite default, `orchestrator serve` runs the rollouts itself",
            key="--database-url",
        )
    sessions = db.open_sessions(database_url)
    queue.require_installed(database_url)
    runner = JobRunner(project_root(root), state_dir(), database_url, sessions)
    # The phase changes of the rollouts it drives are told (Slack, webhooks, GitHub) from the audit trail.
    notifier = start_notifier(Project(runner.root), sessions)
    try:
        asyncio.run(run_worker(runner, database_url, concurrency=concurrency))
    finally:
        if notifier is not None:
            notifier.stop(flush_seconds=notify_flush_seconds())
