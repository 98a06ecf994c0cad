"""A webhook estate on Postgres: the estate in git, the server queueing, `orchestrator worker` processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from orchestrator.runtime import open_store
from orchestrator.server.app import create_app
from orchestrator.server.settings import ServerSettings
from orchestrator.server.webhook_settings import WebhookSettings
from orchestrator.store import db
from orchestrator.store.models import Deployment, RequestStatus, RolloutRequest
from tests.helpers import REPO, run_cli
from tests.integration.rollout_fixtures import FAST_CANARY
from tests.server_fixtures import serving
from tests.webhook_helpers import REPOSITORY, SECRET, commit_change, deliver, git_estate, push_payload


class Estate:
    def __init__(self, root: Path, env: dict[str, str], base: str, sessions: sessionmaker[Session]) -> None:
        self.root, self.env, self.base, self.sessions = root, env, base, sessions
        self.workers: list[subprocess.Popen[bytes]] = []

    def worker(self, *args: str) -> subprocess.Popen[bytes]:
        log = open(self.root.parent / f"worker-{len(self.workers)}.log", "wb")  # noqa: SIM115
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "orchestrator",
                "--log-level",
                "info",
                "worker",
                "--concurrency",
                "2",
                *args,
            ],
            cwd=REPO,
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.workers.append(process)
        return process

    def push(self, version: str, *, delivery: str | None = None) -> tuple[str, dict[str, object]]:
        sha = commit_change(self.root, "services/api/VERSION", f"{version}\n")
        response = deliver(self.base, push_payload(sha, paths=["services/api/VERSION"]), delivery=delivery)
        assert response.status_code == 202, response.text
        return sha, response.json()

    def deployments(self) -> list[Deployment]:
        with self.sessions() as session:
            return list(
                session.scalars(
                    select(Deployment).where(Deployment.service == "api").order_by(Deployment.created_at)
                )
            )

    def requests(self) -> list[RolloutRequest]:
        with self.sessions() as session:
            return list(session.scalars(select(RolloutRequest).order_by(RolloutRequest.id)))

    def wait(self, done: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            for process in self.workers:
                assert process.poll() is None or process.returncode in (0, -9), f"a worker exited: {what}"
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}: {self.logs()}")
            time.sleep(0.1)

    def settled(self, count: int) -> Callable[[], bool]:
        def check() -> bool:
            requests = self.requests()
            finished = {
                RequestStatus.DEPLOYED.value,
                RequestStatus.SUPERSEDED.value,
                RequestStatus.FAILED.value,
            }
            return len(requests) >= count and all(r.status in finished for r in requests)

        return check

    def logs(self) -> str:
        return "\n".join(p.read_text()[-3000:] for p in sorted(self.root.parent.glob("worker-*.log")))


@contextmanager
def webhook_estate(
    tmp_path: Path,
    running_sim: dict[str, str],
    url: str,
    *,
    promotion: str = "[local]",
    strategy: str = FAST_CANARY,
) -> Iterator[Estate]:
    """The estate in git, its database upgraded (the queue installed), the server serving its webhooks."""
    root = git_estate(tmp_path / "estate", strategy=strategy, promotion=promotion)
    env = {
        **running_sim,
        "ORCHESTRATOR_DATABASE_URL": url,
        "ORCHESTRATOR_ROOT": str(root),
        "ORCHESTRATOR_LEASE_SECONDS": "5",
        "ORCHESTRATOR_HEARTBEAT_SECONDS": "0.5",
    }
    upgrade = run_cli("db", "upgrade", env=env)
    assert upgrade.returncode == 0, upgrade.stderr
    assert "job queue ready" in upgrade.stdout
    settings = ServerSettings(
        root=root,
        state_dir=Path(running_sim["ORCHESTRATOR_STATE_DIR"]),
        database_url=url,
        webhooks=WebhookSettings(github_secret=SECRET, github_repository=REPOSITORY),
    )
    app = create_app(settings)
    sessions = open_store(url)
    with serving(app) as base:
        here = Estate(root, env, base, sessions)
        try:
            yield here
        finally:
            for process in here.workers:
                if process.poll() is None:
                    process.kill()
                process.wait()
            db.engine_of(sessions).dispose()
