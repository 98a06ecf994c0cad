"""`orchestrator status` reads the clusters: live weights, versions and readiness beside the store's record,
with every disagreement (a hand edit, an emptied cluster, an unreachable one) named."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.e2e.test_deploy_cli import GATED, kubectl_json
from tests.helpers import run_cli
from tests.integration.rollout_fixtures import estate_with_strategy

CLUSTERS = ("aws", "azure", "gcp")


def _status(env: dict[str, str]) -> dict[str, Any]:
    result = run_cli("status", "api", "--env", "local", "-o", "json", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    views = json.loads(result.stdout)
    assert len(views) == 1
    return dict(views[0])


def _clusters(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["cluster"]: c for c in view["clusters"]}


def _set_primary_weights(env: dict[str, str], cluster: str, stable: int, canary: int) -> None:
    """What an operator's `kubectl replace` does: rewrite the primary route's weights behind our back."""
    vs = kubectl_json(env, cluster, "get", "virtualservice", "api", "-n", "addtocloud")
    primary = next(r for r in vs["spec"]["http"] if r["name"] == "primary")
    for destination in primary["route"]:
        destination["weight"] = canary if destination["destination"]["subset"] == "canary" else stable
    kubeconfig = Path(env["ORCHESTRATOR_STATE_DIR"]) / "sim" / "kubeconfig"
    replaced = subprocess.run(
        ["kubectl", "--kubeconfig", str(kubeconfig), "--context", f"sim-{cluster}", "replace", "-f", "-"],
        input=json.dumps(vs),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert replaced.returncode == 0, replaced.stderr


def test_status_shows_live_state_and_names_each_disagreement(
    tmp_path: Path, running_sim: dict[str, str]
) -> None:
    # COLUMNS: the text table is as wide as a terminal would be, so a row is one line to search.
    env = {
        **running_sim,
        "ORCHESTRATOR_ROOT": str(estate_with_strategy(tmp_path / "estate", GATED)),
        "COLUMNS": "200",
    }
    first = run_cli("deploy", "api", "--env", "local", "--strategy", "rolling", env=env)
    assert first.returncode == 0, first.stdout + first.stderr

    view = _status(env)
    assert view["disagreements"] == []
    for name, cluster in _clusters(view).items():
        live = cluster["live"]
        assert live["reachable"] and live["running"], name
        assert (live["stable_weight"], live["canary_weight"]) == (100, 0)
        assert live["stable"]["ready"] and live["stable"]["available"] == 2
        assert live["stable"]["version"].startswith("v")
        assert cluster["disagreements"] == []

    # Someone sets gcp to 80/20 by hand: the record still says 100/0, the cluster says otherwise.
    _set_primary_weights(env, "gcp", 80, 20)
    view = _status(env)
    gcp = _clusters(view)["gcp"]
    assert (gcp["stable_weight"], gcp["canary_weight"]) == (100, 0)  # recorded
    assert (gcp["live"]["stable_weight"], gcp["live"]["canary_weight"]) == (80, 20)  # live
    assert "live weights 80/20 (stable/canary), recorded 100/0" in gcp["disagreements"]
    # 20 % goes to a canary subset with no ready canary Deployment behind it: said as well.
    assert any("canary carries 20%" in d for d in gcp["disagreements"])
    assert _clusters(view)["aws"]["disagreements"] == []
    text = run_cli("status", "api", "--env", "local", env=env)
    assert text.returncode == 0, text.stderr
    assert "DISAGREES gcp: live weights 80/20 (stable/canary), recorded 100/0" in text.stdout
    _set_primary_weights(env, "gcp", 100, 0)

    # An unreachable cluster is marked as such, and the others are still read.
    assert run_cli("sim", "faults", "azure", "--down", env=env).returncode == 0
    started = time.monotonic()
    view = _status(env)
    assert time.monotonic() - started < 30
    azure = _clusters(view)["azure"]
    assert azure["live"]["reachable"] is False
    assert azure["disagreements"][0].startswith("unreachable: ")
    assert "azure" in azure["live"]["error"]
    assert _clusters(view)["aws"]["disagreements"] == []
    assert "unreachable" in run_cli("status", "api", "--env", "local", env=env).stdout
    assert run_cli("sim", "faults", "azure", "--clear", env=env).returncode == 0

    # A cluster that answers too slowly costs status its deadline once, and is named as not answering.
    assert run_cli("sim", "faults", "gcp", "--latency-ms", "30000", env=env).returncode == 0
    started = time.monotonic()
    view = _status(env)
    assert time.monotonic() - started < 28  # not the 30 s the cluster takes to answer
    gcp = _clusters(view)["gcp"]
    assert gcp["live"]["error"] == "cluster gcp did not answer within 5s"
    assert gcp["disagreements"] == ["unreachable: cluster gcp did not answer within 5s"]
    assert _clusters(view)["azure"]["disagreements"] == []
    assert run_cli("sim", "faults", "gcp", "--clear", env=env).returncode == 0

    # The sim restarted: its clusters are empty, whatever the store remembers.
    assert run_cli("sim", "down", env=env).returncode == 0
    assert run_cli("sim", "up", env=env).returncode == 0
    view = _status(env)
    assert view["phase"] == "Succeeded"  # the record is unchanged
    for name, cluster in _clusters(view).items():
        assert cluster["live"]["reachable"] and cluster["live"]["running"] is False, name
        assert cluster["disagreements"] == ["the service is not running here (no Deployment/api)"]
    lines = run_cli("status", "api", "--env", "local", env=env).stdout.splitlines()
    for name in CLUSTERS:
        row = next(line for line in lines if line.startswith(f"│ {name} "))
        assert "not running" in row and "NO" in row
        assert f"DISAGREES {name}: the service is not running here (no Deployment/api)" in lines


def test_clusters_a_rolled_back_deployment_never_touched_show_what_they_run(
    tmp_path: Path, running_sim: dict[str, str]
) -> None:
    # COLUMNS: the text table is as wide as a terminal would be, so a row is one line to search.
    env = {
        **running_sim,
        "ORCHESTRATOR_ROOT": str(estate_with_strategy(tmp_path / "estate", GATED)),
        "COLUMNS": "200",
    }
    good = run_cli("deploy", "api", "--env", "local", "--strategy", "rolling", env=env)
    assert good.returncode == 0, good.stdout + good.stderr
    running_version = _clusters(_status(env))["gcp"]["live"]["stable"]["version"]

    bad = run_cli("deploy", "api", "--env", "local", "--set", "sim.errorRate=0.3", env=env)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    view = _status(env)
    assert view["phase"] == "RolledBack"
    clusters = _clusters(view)
    assert clusters["aws"]["phase"] == "RolledBack" and clusters["aws"]["touched"] is True
    for name in ("azure", "gcp"):  # the second wave: the gate failed in the first
        assert clusters[name]["phase"] == "Pending" and clusters[name]["touched"] is False
        assert clusters[name]["live"]["stable"]["version"] == running_version
        assert clusters[name]["disagreements"] == []
    assert view["disagreements"] == []
    text = run_cli("status", "api", "--env", "local", env=env).stdout
    assert "Pending" not in text
    assert text.count("not touched") == 2
    assert f"{running_version} 2/2 ready" in text
