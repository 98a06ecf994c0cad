"""`orchestrator deploy`, `promote` and `rollback` with notifications configured, as a user runs them:
the phase changes each made are delivered before it exits; an endpoint that is down costs at most the
flush time and changes nothing."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

from tests.fakes.receiver import Receiver
from tests.fakes.webhook_check import verify_signature
from tests.helpers import run_cli
from tests.integration.rollout_fixtures import FAST_CANARY, estate_with_strategy


def with_webhook(
    root: Path,
    url: str,
    *,
    environment: str = "local",
    triggers: str = "on-started, on-succeeded",
    signed: bool = True,
    extra: str = "",
) -> Path:
    """A generic webhook destination (signed with $CI_HMAC unless `signed` is false) on `environment`,
    with `extra` top-level YAML before it."""
    path = root / "environments" / f"{environment}.yaml"
    path.write_text(
        path.read_text()
        + extra
        + f"notifications:\n  - name: ci\n    type: webhook\n    url: {url}\n"
        + ("    secretEnv: CI_HMAC\n" if signed else "")
        + f"    triggers: [{triggers}]\n"
    )
    return root


def test_deploy_delivers_its_notifications_before_it_exits(
    tmp_path: Path, running_sim: dict[str, str]
) -> None:
    with Receiver() as hook:
        root = with_webhook(estate_with_strategy(tmp_path / "estate", FAST_CANARY), hook.url)
        env = {**running_sim, "ORCHESTRATOR_ROOT": str(root), "CI_HMAC": "k3y"}
        deployed = run_cli("deploy", "api", "--env", "local", "--strategy", "rolling", env=env)
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        received = list(hook.delivered)  # what had arrived when the command exited
    assert [r.json()["trigger"] for r in received] == ["on-started", "on-succeeded"]
    assert all(verify_signature(r.body, r.headers["x-signature"], "k3y") for r in received)
    assert "k3y" not in deployed.stdout + deployed.stderr


def test_an_unreachable_endpoint_costs_at_most_the_flush_time_and_changes_no_outcome(
    tmp_path: Path, running_sim: dict[str, str]
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    root = with_webhook(estate_with_strategy(tmp_path / "estate", FAST_CANARY), f"http://127.0.0.1:{port}/x")
    env = {
        **running_sim,
        "ORCHESTRATOR_ROOT": str(root),
        "CI_HMAC": "k3y",
        "ORCHESTRATOR_NOTIFY_FLUSH_SECONDS": "2",
    }
    started = time.monotonic()
    deployed = run_cli("deploy", "api", "--env", "local", "--strategy", "rolling", env=env)
    took = time.monotonic() - started
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert "Succeeded" in deployed.stdout or "succeeded" in deployed.stdout.lower()
    history = run_cli("history", "api", "--env", "local", "-o", "json", env=env)
    assert '"Succeeded"' in history.stdout
    assert took < 60  # the deploy itself and at most 2 s of flushing, on a loaded machine


def test_a_bad_flush_setting_is_bad_usage_before_anything_runs(
    tmp_path: Path, running_sim: dict[str, str]
) -> None:
    root = estate_with_strategy(tmp_path / "estate", FAST_CANARY)
    env = {**running_sim, "ORCHESTRATOR_ROOT": str(root), "ORCHESTRATOR_NOTIFY_FLUSH_SECONDS": "soon"}
    deployed = run_cli("deploy", "api", "--env", "local", env=env)
    assert deployed.returncode == 2
    assert "ORCHESTRATOR_NOTIFY_FLUSH_SECONDS='soon' is not a number of seconds" in deployed.stderr
    history = run_cli("history", "api", "--env", "local", "-o", "json", env=env)
    assert history.stdout.strip() in ("[]", "")


def test_promote_and_rollback_deliver_their_notifications_before_they_exit(
    tmp_path: Path, running_sim: dict[str, str]
) -> None:
    # Every command that drives a rollout runs a notifier: a promotion's phase changes (and so its
    # post-promotion hooks) and a rollback's must not wait in the outbox for some later command.
    from tests.e2e.test_promote_cli import IMAGE_A, IMAGE_B, git_estate
    from tests.services.identity import Cli

    with Receiver() as hook:
        root = git_estate(tmp_path / "estate", approval=False)
        for name in ("local", "local-prod"):
            with_webhook(root, hook.url, environment=name)
        cli = Cli(tmp_path, {**running_sim, "ORCHESTRATOR_ROOT": str(root), "CI_HMAC": "k3y"})
        assert cli("deploy", "api", "--env", "local", "--image", IMAGE_A).returncode == 0
        promoted = cli("promote", "api", "--to", "local-prod")
        assert promoted.returncode == 0, promoted.stdout + promoted.stderr
        after_promote = [r.json() for r in hook.delivered]
        assert cli("deploy", "api", "--env", "local", "--image", IMAGE_B).returncode == 0
        rolled = cli("rollback", "api", "--env", "local")
        assert rolled.returncode == 0, rolled.stdout + rolled.stderr
        received = [r.json() for r in hook.delivered]

    def told(messages: list[dict[str, object]], kind: str) -> list[object]:
        return [m["trigger"] for m in messages if m["deployment"]["kind"] == kind]  # type: ignore[index]

    assert told(after_promote, "promote") == ["on-started", "on-succeeded"]
    assert told(received, "rollback") == ["on-started", "on-succeeded"]
    assert [m["deployment"]["environment"] for m in received if m["deployment"]["kind"] == "promote"] == [
        "local-prod",
        "local-prod",
    ]


def test_a_deploy_held_for_an_approval_announces_it_and_the_approve_announces_the_end(
    tmp_path: Path, running_sim: dict[str, str]
) -> None:
    with Receiver() as hook:
        root = with_webhook(
            estate_with_strategy(tmp_path / "estate", FAST_CANARY),
            hook.url,
            triggers="on-awaiting-approval, on-succeeded",
            signed=False,
            extra="approval:\n  required: true\n  approvers: [admin]\n",
        )
        env = {**running_sim, "ORCHESTRATOR_ROOT": str(root)}
        held = run_cli("deploy", "api", "--env", "local", "--strategy", "rolling", "--no-wait", env=env)
        assert held.returncode == 0, held.stdout + held.stderr
        waiting = [r.json() for r in hook.delivered]  # what had arrived when the command exited
        short = held.stdout.split()[1].rstrip(":")  # "deployment 1a2b3c4d: api to local"
        approved = run_cli("approve", short, env=env)
        assert approved.returncode == 0, approved.stdout + approved.stderr
        ended = [r.json() for r in hook.delivered]
    assert [(m["trigger"], m["deployment"]["phase"]) for m in waiting] == [
        ("on-awaiting-approval", "AwaitingApproval")
    ]
    assert [m["trigger"] for m in ended] == ["on-awaiting-approval", "on-succeeded"]


def test_github_down_throughout_a_live_deploy_stalls_nothing_and_the_statuses_catch_up(
    tmp_path: Path, running_sim: dict[str, str]
) -> None:
    # The engine never calls GitHub: a deploy while GitHub answers only 503 runs to Succeeded and exits
    # after the bounded flush; once GitHub is back, the next notifier sends every status, in order.
    from orchestrator.config import Project
    from orchestrator.notify.notifier import Notifier, RetryPolicy
    from orchestrator.runtime import open_store
    from tests.fakes.github import FakeGitHub

    with FakeGitHub() as github:
        root = estate_with_strategy(tmp_path / "estate", FAST_CANARY)
        local = root / "environments" / "local.yaml"
        local.write_text(
            local.read_text() + f"github:\n  repository: addtocloud/platform\n  apiUrl: {github.api_url}\n"
            f"  tokenEnv: FAKE_GITHUB_TOKEN\n  caBundle: {github.ca_path}\n"
        )
        github.unavailable = 10**6  # down until told otherwise
        env = {
            **running_sim,
            "ORCHESTRATOR_ROOT": str(root),
            "FAKE_GITHUB_TOKEN": github.token,
            "ORCHESTRATOR_NOTIFY_FLUSH_SECONDS": "2",
        }
        started = time.monotonic()
        deployed = run_cli("deploy", "api", "--env", "local", "--strategy", "rolling", env=env)
        took = time.monotonic() - started
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        assert "api in local: Succeeded" in deployed.stdout
        assert took < 60 and github.deployments == {}
        assert github.server.requests  # it was tried, and refused

        github.unavailable = 0  # back
        sessions = open_store(running_sim["ORCHESTRATOR_DATABASE_URL"])
        os.environ["FAKE_GITHUB_TOKEN"] = github.token
        tailer = Notifier(Project(root), sessions, github_retry=RetryPolicy(12, 0.2, 1.0), poll_interval=0.2)
        try:
            deadline = time.monotonic() + 60  # the CLI's last backoff (at most 16 s) must pass first
            while not (github.deployments and github.states(min(github.deployments))[-1:] == ["success"]):
                assert time.monotonic() < deadline, outbox_rows(sessions)
                tailer.run_once()
                time.sleep(0.2)
        finally:
            del os.environ["FAKE_GITHUB_TOKEN"]
    [number] = github.deployments
    assert github.states(number) == ["queued", "in_progress", "success"]


def outbox_rows(sessions: Any) -> list[dict[str, Any]]:
    from sqlalchemy import text

    from orchestrator.store.db import engine_of

    with engine_of(sessions).connect() as connection:
        return [dict(r._mapping) for r in connection.execute(text("SELECT * FROM notification_deliveries"))]
