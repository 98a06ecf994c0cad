"""`orchestrator deploy` as a user runs it against `orchestrator sim up`: rolling and canary, zero writes on a
repeat, automatic rollback with its evidence in `status` and `history`, an outage named."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from orchestrator.sim.client import SimControl, load_running_sim
from tests.helpers import run_cli
from tests.integration.rollout_fixtures import estate_with_strategy

GATED = """strategy:
  canary:
    steps:
      - setWeight: 20
      - analysis:
          templates:
            - templateName: request-success-rate
      - setWeight: 60
      - pause: {duration: 0.3s}
"""
PAUSED = """strategy:
  canary:
    steps:
      - setWeight: 20
      - pause: {}
"""
CLUSTERS = ("aws", "azure", "gcp")


def kubectl_json(env: dict[str, str], cluster: str, *args: str) -> dict[str, Any]:
    import subprocess

    kubeconfig = Path(env["ORCHESTRATOR_STATE_DIR"]) / "sim" / "kubeconfig"
    result = subprocess.run(
        ["kubectl", "--kubeconfig", str(kubeconfig), "--context", f"sim-{cluster}", *args, "-o", "json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def test_deploy_status_history_and_rollback(tmp_path: Path, running_sim: dict[str, str]) -> None:
    env = {**running_sim, "ORCHESTRATOR_ROOT": str(estate_with_strategy(tmp_path / "estate", GATED))}
    info = load_running_sim(env["ORCHESTRATOR_STATE_DIR"])
    assert info is not None

    rolling = run_cli("deploy", "api", "--env", "local", "--strategy", "rolling", env=env)
    assert rolling.returncode == 0, rolling.stdout + rolling.stderr
    for cluster in CLUSTERS:
        status = kubectl_json(env, cluster, "get", "deployment", "api", "-n", "addtocloud")["status"]
        assert status["availableReplicas"] == status["replicas"] == 2

    with SimControl.for_sim(info) as control:
        for cluster in CLUSTERS:
            control.reset_requests(cluster)
        again = run_cli("deploy", "api", "--env", "local", "--strategy", "rolling", env=env)
        assert again.returncode == 0, again.stdout + again.stderr
        assert {c: control.requests(c, verb="write") for c in CLUSTERS} == {c: [] for c in CLUSTERS}

    canary = run_cli("deploy", "api", "--env", "local", "--set", "env.RELEASE=2", env=env)
    assert canary.returncode == 0, canary.stdout + canary.stderr
    assert "setWeight 20" in canary.stdout and "request-success-rate" in canary.stdout
    status = json.loads(run_cli("status", "api", "--env", "local", "-o", "json", env=env).stdout)
    assert status[0]["phase"] == "Succeeded"
    assert [(c["cluster"], c["stable_weight"], c["phase"]) for c in status[0]["clusters"]] == [
        (c, 100, "Succeeded") for c in CLUSTERS
    ]
    assert status[0]["running"]["deployment"] == status[0]["id"]

    bad = run_cli("deploy", "api", "--env", "local", "--set", "sim.errorRate=0.3", env=env)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    status = json.loads(run_cli("status", "api", "--env", "local", "-o", "json", env=env).stdout)
    assert status[0]["phase"] == "RolledBack"
    assert all(c["stable_weight"] == 100 for c in status[0]["clusters"])
    for cluster in CLUSTERS:
        vs = kubectl_json(env, cluster, "get", "virtualservice", "api", "-n", "addtocloud")
        primary = next(r for r in vs["spec"]["http"] if r["name"] == "primary")
        assert {d["destination"]["subset"]: d["weight"] for d in primary["route"]} == {
            "stable": 100,
            "canary": 0,
        }
    canary_deployment = kubectl_json(env, "aws", "get", "deployment", "api-canary", "-n", "addtocloud")
    assert canary_deployment["spec"]["replicas"] == 0
    history = json.loads(run_cli("history", "api", "-o", "json", env=env).stdout)
    failed = history[0]
    assert failed["phase"] == "RolledBack" and "request-success-rate" in failed["message"]
    measurements = [e for e in failed["events"] if e["type"] == "measurement"]
    assert any(m["data"]["phase"] == "Failed" and m["data"]["value"] for m in measurements)


def test_an_unreachable_cluster_fails_the_deploy_naming_it(
    tmp_path: Path, running_sim: dict[str, str]
) -> None:
    env = {**running_sim, "ORCHESTRATOR_ROOT": str(estate_with_strategy(tmp_path / "estate", GATED))}
    down = run_cli("sim", "faults", "gcp", "--down", env=env)
    assert down.returncode == 0, down.stderr
    result = run_cli("deploy", "api", "--env", "local", "--strategy", "rolling", env=env)
    assert result.returncode == 1
    assert "gcp" in result.stdout + result.stderr
    history = json.loads(run_cli("history", "api", "-o", "json", env=env).stdout)
    # gcp cannot be connected to, so no step runs: wave 1 (aws) is rolled back (nothing to undo there).
    assert history[0]["phase"] == "RolledBack" and "gcp" in history[0]["message"]
    outcome = [e for e in history[0]["events"] if e["type"] == "phase"][-1]
    assert outcome["data"]["event"] == "rolled_back" and outcome["data"]["rolled_back"] == ["aws"]


DIGEST = "sha256:" + "ab" * 32


def test_the_recorded_release_the_refusals_and_the_control_commands(
    tmp_path: Path, running_sim: dict[str, str]
) -> None:
    env = {**running_sim, "ORCHESTRATOR_ROOT": str(estate_with_strategy(tmp_path / "estate", PAUSED))}
    image = f"127.0.0.1:5000/addtocloud/api@{DIGEST}"
    first = run_cli("deploy", "api", "--env", "local", "--strategy", "rolling", "--image", image, env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    history = json.loads(run_cli("history", "api", "-o", "json", env=env).stdout)
    assert history[0]["release"]["image_repository"] == "127.0.0.1:5000/addtocloud/api"
    assert history[0]["release"]["image"] == image

    paused = run_cli("deploy", "api", "--env", "local", "--set", "env.RELEASE=2", env=env)
    assert paused.returncode == 0, paused.stdout + paused.stderr
    paused_id = json.loads(run_cli("history", "api", "-o", "json", env=env).stdout)[0]["id"]
    # A second deploy while one is in progress is refused before anything is recorded.
    second = run_cli("deploy", "api", "--env", "local", "--set", "env.RELEASE=3", env=env)
    assert second.returncode == 1
    assert f"already being rolled out by deployment {paused_id}" in second.stderr
    history = json.loads(run_cli("history", "api", "-o", "json", env=env).stdout)
    assert [h["id"] for h in history] == [paused_id, history[1]["id"]] and len(history) == 2

    # Not an id at all: bad usage, exit 2.
    bad = run_cli("approve", "zzzz", env=env)
    assert bad.returncode == 2 and "'zzzz' is not a deployment id" in bad.stderr, bad.stderr

    aborted = run_cli("abort", paused_id[:8], env=env)
    assert aborted.returncode == 0, aborted.stdout + aborted.stderr
    again = run_cli("abort", paused_id[:8], env=env)
    assert again.returncode == 1 and "it is Aborted; abort does not apply" in again.stderr, again.stderr
    retried = run_cli("retry", paused_id[:8], env=env)
    assert retried.returncode == 0, retried.stdout + retried.stderr
    history = json.loads(run_cli("history", "api", "-o", "json", env=env).stdout)
    assert history[0]["phase"] == "Paused"
    assert f"deployment {history[0]['id'][:8]}: api to local (retry of {paused_id[:8]})" in retried.stdout
    # The retry rolled out the frozen release of the aborted deployment, by the same manifests.
    assert history[0]["release"]["id"] == history[1]["release"]["id"]


def test_a_deploy_to_prod_waits_for_an_approval_before_reaching_any_cluster(
    tmp_path: Path, running_sim: dict[str, str]
) -> None:
    """prod asks for approvals: the deployment is recorded AwaitingApproval without connecting to EKS, AKS or
    GKE (which this machine cannot reach), and an abort withdraws it with nothing touched."""
    env = {**running_sim, "ORCHESTRATOR_ROOT": str(estate_with_strategy(tmp_path / "estate", GATED))}
    image = f"ghcr.io/addtocloud/api@{DIGEST}"
    result = run_cli("deploy", "api", "--env", "prod", "--image", image, "--no-wait", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    [waiting] = json.loads(run_cli("history", "api", "-o", "json", env=env).stdout)
    assert waiting["phase"] == "AwaitingApproval"
    assert f"`orchestrator approve {waiting['id'][:8]}`" in result.stdout
    assert {c["phase"] for c in waiting["clusters"]} == {"Pending"}
    aborted = run_cli("abort", waiting["id"][:8], env=env)
    assert aborted.returncode == 0, aborted.stdout + aborted.stderr
    assert "before its approval; no cluster was touched" in aborted.stdout
    [withdrawn] = json.loads(run_cli("history", "api", "-o", "json", env=env).stdout)
    assert withdrawn["phase"] == "Aborted"
