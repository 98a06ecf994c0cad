"""`orchestrator --server URL …` against `orchestrator serve` and `orchestrator sim up`: the CLI as a client
of the REST API behaves as the local command does (output, exit codes, the history it leaves), and the
server's log at debug level never shows a token."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import run_cli
from tests.integration.rollout_fixtures import estate_with_strategy
from tests.server_fixtures import serve_process

CANARY = """strategy:
  canary:
    steps:
      - setWeight: 20
      - pause: {duration: 0.3s}
      - setWeight: 60
"""


@pytest.fixture
def served(tmp_path: Path, running_sim: dict[str, str]) -> Iterator[tuple[dict[str, str], str, Path]]:
    """An admin, `orchestrator serve` on the sim's state (its stderr at debug level in a file), and the
    environment local commands use."""
    env = {**running_sim, "ORCHESTRATOR_ROOT": str(estate_with_strategy(tmp_path / "estate", CANARY))}
    admin = run_cli("users", "create", "admin@example.com", "--role", "admin", env=env)
    assert admin.returncode == 0, admin.stderr
    log = tmp_path / "serve.log"
    with serve_process(env, log) as base:
        yield env, base, log


def test_server_mode_behaves_as_the_local_command(served: tuple[dict[str, str], str, Path]) -> None:
    env, base, log = served
    remote_env = {**env, "ORCHESTRATOR_SERVER": base}

    local = run_cli("deploy", "api", "--env", "local", "--strategy", "rolling", env=env)
    assert local.returncode == 0, local.stdout + local.stderr

    remote = run_cli("--server", base, "deploy", "api", "--env", "local", "--set", "env.RELEASE=2", env=env)
    assert remote.returncode == 0, remote.stdout + remote.stderr
    first = remote.stdout.splitlines()[0]
    assert first.startswith("deployment ") and first.endswith(": api to local")
    assert "setWeight 20" in remote.stdout and "setWeight 60" in remote.stdout
    assert "api in local: Succeeded" in remote.stdout and "Succeeded" in local.stdout

    # The same history and status, read locally and through the server.
    for command in (("history", "api"), ("history", "api", "-o", "json"), ("status", "api", "-o", "json")):
        here = run_cli(*command, env=env)
        there = run_cli(*command, env=remote_env)
        assert here.returncode == there.returncode == 0, there.stderr
        if command[-1] == "json":
            mine, theirs = json.loads(here.stdout), json.loads(there.stdout)
            if command[0] == "status":
                for view in (*mine, *theirs):
                    for cluster in view["clusters"]:
                        cluster.pop("live")  # read live by each side, at its own moment
            assert mine == theirs
        else:
            assert here.stdout == there.stdout
    history = json.loads(run_cli("history", "api", "-o", "json", env=env).stdout)
    assert [(h["phase"], h["actor"]) for h in history] == [("Succeeded", "admin@example.com")] * 2

    # DORA figures and drift, read locally and through the server (the window's ends are each side's now).
    for command in (("stats", "api", "-o", "json"), ("stats", "--env", "local", "-o", "json")):
        here, there = run_cli(*command, env=env), run_cli(*command, env=remote_env)
        assert here.returncode == there.returncode == 0, there.stderr
        mine, theirs = json.loads(here.stdout), json.loads(there.stdout)
        for view in (mine, theirs):
            del view["since"], view["until"]
        assert mine == theirs and mine["deployment_frequency"]["samples"] == 2
    for command in (
        ("drift", "api", "--env", "local"),
        ("drift", "api", "-o", "json"),
        ("stats", "--since", "9x"),
    ):
        here, there = run_cli(*command, env=env), run_cli(*command, env=remote_env)
        assert (here.returncode, here.stdout, here.stderr) == (there.returncode, there.stdout, there.stderr)
    assert "api in local" in run_cli("drift", "api", "--env", "local", env=remote_env).stdout
    assert run_cli("stats", "--since", "9x", env=remote_env).returncode == 2

    # Releases, promotion (to an environment that requires an approval) and rollback through the server.
    for command in (("releases", "api"), ("releases", "api", "-o", "json")):
        here, there = run_cli(*command, env=env), run_cli(*command, env=remote_env)
        assert here.returncode == there.returncode == 0 and here.stdout == there.stdout, there.stderr
    promoted = run_cli("promote", "api", "--to", "local-prod", "--no-wait", env=remote_env)
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr
    assert " from local to local-prod" in promoted.stdout
    assert "api in local-prod: AwaitingApproval" in promoted.stdout
    said = next(line for line in promoted.stdout.splitlines() if line.startswith("deployment "))
    waiting = said.split()[1].rstrip(":")
    started = run_cli("approve", waiting, env=remote_env)
    assert started.returncode == 0 and "api in local-prod: Succeeded" in started.stdout, started.stdout
    undone = run_cli("rollback", "api", "--env", "local", env=remote_env)
    assert undone.returncode == 0, undone.stdout + undone.stderr
    assert ": rollback of api in local: undo deployment " in undone.stdout and "Succeeded" in undone.stdout
    kinds = [
        (h["environment"], h["kind"], h["phase"])
        for h in json.loads(run_cli("history", "api", "-o", "json", env=env).stdout)
    ]
    assert kinds[:2] == [("local", "rollback", "Succeeded"), ("local-prod", "promote", "Succeeded")]

    # Errors exit as locally: bad usage 2, a refusal 1, each with the same message.
    for args in (("deploy", "nope", "--env", "local"), ("abort", "ffffffff")):
        here, there = run_cli(*args, env=env), run_cli(*args, env=remote_env)
        assert (here.returncode, here.stderr) == (there.returncode, there.stderr), there.stderr
    assert run_cli("deploy", "nope", "--env", "local", env=remote_env).returncode == 2
    viewer = run_cli("users", "create", "viewer@example.com", "--role", "viewer", env=env)
    assert viewer.returncode == 0, viewer.stderr
    token = run_cli("tokens", "create", "--user", "viewer@example.com", env=env).stdout.strip()
    refused = run_cli("deploy", "api", "--env", "local", "--token", token, env=remote_env)
    assert refused.returncode == 1 and "viewer@example.com (viewer) may not deploy in local" in refused.stderr
    assert run_cli("db", "upgrade", env=remote_env).returncode == 2  # not through the server: refused

    # /metrics: the requests answered, the deployments by phase, the steps the server's jobs drove (read
    # from the audit trail once its events have settled).
    time.sleep(2.5)
    metrics = httpx.get(f"{base}/metrics").text
    assert 'orchestrator_deployments{environment="local",phase="Succeeded"} 3.0' in metrics
    assert 'orchestrator_deployments{environment="local-prod",phase="Succeeded"} 1.0' in metrics
    assert 'route="/api/v1/deployments",status="202"' in metrics
    counted = "orchestrator_step_duration_seconds_count"
    steps = next(line for line in metrics.splitlines() if line.startswith(counted))
    assert float(steps.split()[-1]) >= 5  # the canary's steps: start, 20 %, pause, 60 %, 100 %, promote

    # Nothing of a token reaches the server's log, even at debug level.
    secrets = [token, (Path(env["ORCHESTRATOR_STATE_DIR"]) / "token").read_text().strip()]
    text = log.read_text()
    assert "authenticated" in text  # the log is at debug level and did see the requests
    assert all(secret not in text and secret[12:] not in text for secret in secrets)


PAUSED = """strategy:
  canary:
    steps:
      - setWeight: 20
      - pause: {}
"""


def test_the_controls_through_the_server(served: tuple[dict[str, str], str, Path]) -> None:
    env, base, _ = served
    remote_env = {**env, "ORCHESTRATOR_SERVER": base}
    pipeline = Path(env["ORCHESTRATOR_ROOT"]) / "pipelines" / "api.yaml"
    pipeline.write_text(re.sub(r"strategy:\n(?:(?:  |    ).*\n)+", PAUSED, pipeline.read_text()))
    first = run_cli("deploy", "api", "--env", "local", env=remote_env)  # the first release: applied directly
    assert first.returncode == 0, first.stdout + first.stderr

    paused = run_cli("deploy", "api", "--env", "local", "--set", "env.RELEASE=2", env=remote_env)
    assert paused.returncode == 0, paused.stdout + paused.stderr
    ref = paused.stdout.split()[1].rstrip(":")
    assert f"paused: continue with `orchestrator approve {ref}`" in paused.stdout
    held = run_cli("pause", ref, env=remote_env)
    assert held.returncode == 0 and "api in local: Paused" in held.stdout, held.stdout + held.stderr
    refused = run_cli("resume", ref, env=remote_env)  # a pause step needs an approval, as locally
    assert refused.returncode == 1 and "approve" in refused.stderr, refused.stdout + refused.stderr
    approved = run_cli("approve", ref, env=remote_env)  # wave 1's pause: on to wave 2's
    assert approved.returncode == 0, approved.stdout + approved.stderr
    assert "step 0:" not in approved.stdout and "api in local: Paused" in approved.stdout
    approved = run_cli("approve", ref, env=remote_env)
    assert approved.returncode == 0, approved.stdout + approved.stderr
    assert "promote" in approved.stdout and "api in local: Succeeded" in approved.stdout

    again = run_cli("deploy", "api", "--env", "local", "--set", "env.RELEASE=3", env=remote_env)
    assert again.returncode == 0, again.stdout + again.stderr
    third = again.stdout.split()[1].rstrip(":")
    aborted = run_cli("abort", third, env=remote_env)
    assert aborted.returncode == 0 and aborted.stdout.startswith("aborted; "), aborted.stdout + aborted.stderr
    retried = run_cli("retry", third, "-o", "json", env=remote_env)
    assert retried.returncode == 0, retried.stdout + retried.stderr
    view = json.loads(retried.stdout)
    assert view["phase"] == "Paused" and not view["id"].startswith(third)

    history = json.loads(run_cli("history", "api", "-o", "json", env=env).stdout)
    assert [h["phase"] for h in history] == ["Paused", "Aborted", "Succeeded", "Succeeded"]
    controls = [(e["type"], e["actor"]) for h in history for e in h["events"] if e["type"] == "control"]
    assert controls and {actor for _, actor in controls} == {"admin@example.com"}
