"""Approvals, deployers and freeze windows as users meet them, through the CLI against `orchestrator sim up`.

An environment with `approval.required`: `deploy --no-wait` records the deployment AwaitingApproval with
nothing written to any cluster; a viewer's (and a mere deployer's) approve is refused; an approver's runs it
to Succeeded, recorded under their name; a `deploy` that waits is driven by its own process once approved
elsewhere. A freeze window refuses a deploy naming the window and its reason; an admin's override records
who and why. A deployer the environment's `deployers` does not list is refused. With
`approval.preventSelfApproval`, the user who deployed may not approve it, and another approver may.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from orchestrator.sim.client import SimControl, load_running_sim
from tests.e2e.test_deploy_cli import CLUSTERS, kubectl_json
from tests.helpers import copy_estate
from tests.services.identity import Cli

POLICIES = """approval:
  required: true
  approvers: [admin, qa@example.com]
deployers: [admin, dev@example.com, qa@example.com]
"""


def gated_estate(root: Path, extra: str = "") -> Path:
    copy_estate(root)
    local = root / "environments" / "local.yaml"
    local.write_text(local.read_text() + POLICIES + extra)
    return root


def users(cli: Cli) -> dict[str, str]:
    """A token per user: the first admin (also the saved login), deployers, an approver, a viewer."""
    created = cli("users", "create", "admin@example.com", "--role", "admin")
    assert created.returncode == 0, created.stderr
    tokens = {"admin": created.stdout.strip().splitlines()[-1]}
    for name, role in (("dev", "deployer"), ("ops", "deployer"), ("qa", "deployer"), ("view", "viewer")):
        made = cli("users", "create", f"{name}@example.com", "--role", role, token=tokens["admin"])
        assert made.returncode == 0, made.stderr
        tokens[name] = cli.token_for("--user", f"{name}@example.com", token=tokens["admin"])
    return tokens


def writes(control: SimControl) -> dict[str, list[dict[str, Any]]]:
    return {c: control.requests(c, verb="write") for c in CLUSTERS}


def test_approval_required_waits_for_an_approver_and_deployers_are_enforced(
    tmp_path: Path, running_sim: dict[str, str]
) -> None:
    cli = Cli(tmp_path, {**running_sim, "ORCHESTRATOR_ROOT": str(gated_estate(tmp_path / "estate"))})
    token = users(cli)
    info = load_running_sim(running_sim["ORCHESTRATOR_STATE_DIR"])
    assert info is not None

    outsider = cli("deploy", "api", "--env", "local", "--strategy", "rolling", token=token["ops"])
    assert outsider.returncode == 1
    assert outsider.stderr.strip() == (
        "error: ops@example.com (deployer) may not deploy in local; "
        "allowed (local's deployers): admin, dev@example.com, qa@example.com"
    )

    with SimControl.for_sim(info) as control:
        for cluster in CLUSTERS:
            control.reset_requests(cluster)
        recorded = cli(
            "deploy", "api", "--env", "local", "--strategy", "rolling", "--no-wait", token=token["dev"]
        )
        assert recorded.returncode == 0, recorded.stdout + recorded.stderr
        assert writes(control) == {c: [] for c in CLUSTERS}  # nothing touched
    [waiting] = cli.json("history", "api")
    short = waiting["id"][:8]
    assert waiting["phase"] == "AwaitingApproval"
    assert f"`orchestrator approve {short}`" in recorded.stdout
    assert "approval.approvers: admin, qa@example.com" in recorded.stdout
    [status] = cli.json("status", "api", "--env", "local")
    assert status["phase"] == "AwaitingApproval" and status["disagreements"] == []
    assert not any(c["touched"] for c in status["clusters"])

    for who, role, why in (("view", "viewer", " (viewers only read)"), ("dev", "deployer", "")):
        refused = cli("approve", short, token=token[who])
        assert refused.returncode == 1
        assert refused.stderr.strip() == (
            f"error: {who}@example.com ({role}) may not approve in local{why}; "
            "allowed (local's approval.approvers): admin, qa@example.com"
        )
    full = cli("approve", short, "--full", token=token["qa"])
    assert full.returncode == 1 and "does not skip its steps" in full.stderr, full.stderr
    assert cli.json("history", "api")[0]["phase"] == "AwaitingApproval"

    approved = cli("approve", short, token=token["qa"])
    assert approved.returncode == 0, approved.stdout + approved.stderr
    assert "approved by qa@example.com: the rollout starts" in approved.stdout
    [done] = cli.json("history", "api")
    assert done["phase"] == "Succeeded"
    started = next(e for e in done["events"] if (e["data"] or {}).get("event") == "approve")
    assert (started["actor"], started["data"]["to"]) == ("qa@example.com", "Progressing")
    for cluster in CLUSTERS:
        live = kubectl_json(running_sim, cluster, "get", "deployment", "api", "-n", "addtocloud")
        assert live["status"]["availableReplicas"] == 2


def test_a_waiting_deploy_is_driven_by_its_own_process_once_approved(
    tmp_path: Path, running_sim: dict[str, str]
) -> None:
    cli = Cli(tmp_path, {**running_sim, "ORCHESTRATOR_ROOT": str(gated_estate(tmp_path / "estate"))})
    token = users(cli)
    env = {**os.environ, **cli.env, "ORCHESTRATOR_TOKEN": token["dev"], "PYTHONUNBUFFERED": "1"}
    deploy = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "deploy", "api", "--env", "local", "--strategy", "rolling"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert deploy.stdout is not None
    reader = threading.Thread(target=lambda: [lines.put(line) for line in deploy.stdout], daemon=True)  # type: ignore[union-attr]
    reader.start()
    seen: list[str] = []
    try:
        # The deploy process says it waits once it holds the lease and has seen the phase.
        while not any("awaiting approval" in line for line in seen):
            seen.append(lines.get(timeout=60))
        [waiting] = cli.json("history", "api")
        assert waiting["phase"] == "AwaitingApproval"
        approved = cli("approve", waiting["id"][:8], token=token["admin"])
        assert approved.returncode == 0, approved.stdout + approved.stderr
        assert "drives this deployment and goes on from here" in approved.stdout
        deploy.wait(timeout=120)
        reader.join(timeout=10)
    finally:
        if deploy.poll() is None:
            deploy.kill()
    while not lines.empty():
        seen.append(lines.get())
    stdout = "".join(seen)
    stderr = deploy.stderr.read() if deploy.stderr else ""
    assert deploy.returncode == 0, stdout + stderr
    assert "awaiting approval" in stdout and "Succeeded" in stdout
    assert cli.json("history", "api")[0]["phase"] == "Succeeded"


def test_a_freeze_window_refuses_a_deploy_and_an_admin_override_records_who_and_why(
    tmp_path: Path, running_sim: dict[str, str]
) -> None:
    now = datetime.now(UTC)
    start, end = (
        (now - timedelta(hours=1)).replace(microsecond=0),
        (now + timedelta(hours=1)).replace(microsecond=0),
    )
    window = (
        f"freezeWindows:\n  - {{start: {start.isoformat()}, end: {end.isoformat()}, reason: quarter close}}\n"
    )
    cli = Cli(tmp_path, {**running_sim, "ORCHESTRATOR_ROOT": str(gated_estate(tmp_path / "estate", window))})
    token = users(cli)

    frozen = cli("deploy", "api", "--env", "local", "--strategy", "rolling", token=token["dev"])
    assert frozen.returncode == 1
    assert (
        f"freeze window from {start.isoformat()} to {end.isoformat()} (quarter close) is in force"
        in frozen.stderr
    ), frozen.stderr
    assert "nothing was recorded or applied" in frozen.stderr
    not_admin = cli(
        "deploy", "api", "--env", "local", "--override-freeze", "--reason", "please", token=token["dev"]
    )
    assert not_admin.returncode == 1
    assert "dev@example.com (deployer) may not override a freeze window in local" in not_admin.stderr
    no_reason = cli("deploy", "api", "--env", "local", "--override-freeze", token=token["admin"])
    assert no_reason.returncode == 2 and "--override-freeze needs --reason TEXT" in no_reason.stderr
    assert cli.json("history", "api") == []  # nothing recorded by any of them

    overridden = cli(
        "deploy", "api", "--env", "local", "--strategy", "rolling", "--no-wait",
        "--override-freeze", "--reason", "CVE-2026-1 fix", token=token["admin"],
    )  # fmt: skip
    assert overridden.returncode == 0, overridden.stdout + overridden.stderr
    [deployment] = cli.json("history", "api")
    [override] = [e for e in deployment["events"] if e["type"] == "override"]
    assert override["actor"] == "admin@example.com" and override["data"]["reason"] == "CVE-2026-1 fix"
    assert override["data"]["windows"][0]["reason"] == "quarter close"
    # The approval inside the window is covered by the deployment's own override.
    approved = cli("approve", deployment["id"][:8], token=token["qa"])
    assert approved.returncode == 0, approved.stdout + approved.stderr
    assert cli.json("history", "api")[0]["phase"] == "Succeeded"


def test_with_four_eyes_the_user_who_deployed_may_not_approve_it(
    tmp_path: Path, running_sim: dict[str, str]
) -> None:
    estate = gated_estate(tmp_path / "estate", "")
    local = estate / "environments" / "local.yaml"
    local.write_text(
        local.read_text().replace(
            "approvers: [admin, qa@example.com]\n",
            "approvers: [admin, qa@example.com]\n  preventSelfApproval: true\n",
            1,
        )
    )
    cli = Cli(tmp_path, {**running_sim, "ORCHESTRATOR_ROOT": str(estate)})
    token = users(cli)
    recorded = cli("deploy", "api", "--env", "local", "--strategy", "rolling", "--no-wait", token=token["qa"])
    assert recorded.returncode == 0, recorded.stdout + recorded.stderr
    [waiting] = cli.json("history", "api")
    short = waiting["id"][:8]

    own = cli("approve", short, token=token["qa"])
    assert own.returncode == 1
    assert own.stderr.strip() == (
        "error: qa@example.com asked for this deployment and may not approve it "
        "(local's approval.preventSelfApproval): another approver must"
    )
    assert cli.json("history", "api")[0]["phase"] == "AwaitingApproval"

    approved = cli("approve", short, token=token["admin"])
    assert approved.returncode == 0, approved.stdout + approved.stderr
    assert cli.json("history", "api")[0]["phase"] == "Succeeded"
