"""How `deploy` shows a rollout: a live table on a terminal (run here under a real pseudo-terminal), plain
lines in a log; a first release says once per cluster that it was applied directly."""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

from tests.e2e.test_deploy_cli import GATED
from tests.helpers import REPO, run_cli
from tests.integration.rollout_fixtures import estate_with_strategy

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def run_on_terminal(*args: str, env: dict[str, str], timeout: float = 300) -> tuple[int, str, str]:
    """Run the CLI with stdout and stdin on a pseudo-terminal, as in an interactive shell; returns the exit
    code, everything written to the terminal, and stderr."""
    master, slave = os.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", *args],
        cwd=REPO,
        env={**os.environ, **env, "TERM": "xterm-256color", "COLUMNS": "160", "LINES": "50"},
        stdin=slave,
        stdout=slave,
        stderr=subprocess.PIPE,
        close_fds=True,
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the child closed its end
                    break
                if not data:
                    break
                chunks.append(data)
            elif process.poll() is not None:
                break
        code = process.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()
        assert process.stderr is not None
        errors = process.stderr.read().decode(errors="replace")
        process.stderr.close()
    return code, b"".join(chunks).decode(errors="replace"), errors


def test_first_release_says_once_it_was_applied_directly_and_log_lines_stay_plain(
    tmp_path: Path, running_sim: dict[str, str]
) -> None:
    env = {**running_sim, "ORCHESTRATOR_ROOT": str(estate_with_strategy(tmp_path / "estate", GATED))}
    first = run_cli("deploy", "api", "--env", "local", env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    lines = first.stdout.splitlines()
    direct = [line for line in lines if "applied directly" in line]
    # One line per wave (aws; then azure and gcp), each cluster named once.
    assert len(direct) == 2
    assert "aws: first release here" in direct[0] and "azure, gcp: first release here" in direct[1]
    assert not [line for line in lines if re.search(r"done\s*$", line)]  # no empty `done`
    steps = [line for line in lines if re.search(r"\d+\.\ds step \d+:", line)]
    assert [s.split(": ", 1)[1] for s in steps] == [
        "start canary · wave 1 (aws)",
        "start canary · wave 2 (azure, gcp)",
    ]
    assert any(re.search(r"\d+ step\(s\) had nothing left to do", line) for line in lines)
    assert "\x1b[" not in first.stdout  # a log gets no colours and no cursor movement


def test_a_terminal_gets_a_live_table_of_the_clusters(tmp_path: Path, running_sim: dict[str, str]) -> None:
    env = {**running_sim, "ORCHESTRATOR_ROOT": str(estate_with_strategy(tmp_path / "estate", GATED))}
    first = run_cli("deploy", "api", "--env", "local", "--strategy", "rolling", env=env)
    assert first.returncode == 0, first.stdout + first.stderr

    code, screen, errors = run_on_terminal(
        "deploy", "api", "--env", "local", "--set", "env.RELEASE=2", env=env
    )
    text = ANSI.sub("", screen)
    assert code == 0, text + errors
    assert "\x1b[" in screen  # drawn as a terminal view, not printed as log lines
    header = re.search(r"cluster\s*┃\s*stable %\s*┃\s*canary %\s*┃\s*phase\s*┃\s*last gate", text)
    assert header, text
    for cluster in ("aws", "azure", "gcp"):
        assert re.search(rf"│ {cluster}\s*│", text), cluster
    assert re.search(r"│ aws\s*│ 80\s*│ 20\s*│ canary 20%", text)  # the setWeight 20 step, as it ran
    assert re.search(r"│ request-success-rate [0-9.]+ Successful\s*│", text)  # the last gate value
    assert "next step in" in text  # the timed pause counts down
    assert re.search(r"applying, then waiting for the Deployments to be ready \(\d+s in this step\)", text)
    assert re.search(r"step \d+: setWeight 60 · wave 2 \(azure, gcp\)", text)
    assert "finished: Succeeded" in text
    # The view's lines are not repeated as a log: plain progress lines are absent.
    assert not re.search(r"\d+\.\ds step \d+:", text)


PAUSED = """strategy:
  canary:
    steps:
      - setWeight: 30
      - pause: {}
      - setWeight: 70
"""


def test_approve_on_a_terminal_goes_on_in_the_live_view(tmp_path: Path, running_sim: dict[str, str]) -> None:
    env = {**running_sim, "ORCHESTRATOR_ROOT": str(estate_with_strategy(tmp_path / "estate", PAUSED))}
    assert run_cli("deploy", "api", "--env", "local", "--strategy", "rolling", env=env).returncode == 0
    paused = run_cli("deploy", "api", "--env", "local", "--set", "env.RELEASE=2", env=env)
    assert paused.returncode == 0, paused.stdout + paused.stderr
    assert "paused until approved" in paused.stdout
    deployment = json.loads(run_cli("history", "api", "-o", "json", env=env).stdout)[0]
    assert deployment["phase"] == "Paused"

    code, screen, errors = run_on_terminal("approve", deployment["id"][:8], env=env)
    text = ANSI.sub("", screen)
    assert code == 0, text + errors
    assert re.search(r"cluster\s*┃\s*stable %\s*┃\s*canary %\s*┃\s*phase\s*┃\s*last gate", text), text
    assert re.search(r"│ aws\s*│ 30\s*│ 70\s*│ canary 70%", text)  # the step after the pause, as it ran
    # The second wave pauses in its turn; the view ends there, and the command says how to go on.
    second_pause = r"step \d+: pause until approved · wave 2 \(azure, gcp\) \(paused until approved\)"
    assert re.search(second_pause, text)
    assert f"paused: continue with `orchestrator approve {deployment['id'][:8]}`" in text
