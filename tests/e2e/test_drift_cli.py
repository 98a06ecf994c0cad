"""Drift as a user meets it against `orchestrator sim up`: after a deploy nothing has drifted; `kubectl scale`
and an edited VirtualService are named by object and field (`drift --exit-code` exits 1, `status` shows it,
`diff` puts it between rendered and live); replicas an HPA owns and a route another controller added are
not drift."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.e2e.test_deploy_cli import PAUSED, kubectl_json
from tests.e2e.test_gitops_cli import ROLLING
from tests.helpers import run_cli
from tests.integration.rollout_fixtures import FOREIGN_ROUTE, estate_with_strategy

VS = "virtualservice.v1beta1.networking.istio.io"


def drift(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = run_cli("drift", *args, env=env)
    assert result.returncode in (0, 1), result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return result.returncode, result.stdout


def drift_json(env: dict[str, str]) -> dict[str, Any]:
    code, out = drift(env, "api", "--env", "local", "-o", "json")
    assert code == 0
    [report] = json.loads(out)
    return dict(report)


def kubectl(env: dict[str, str], cluster: str, *args: str) -> None:
    """A change made by hand in the api's namespace of one emulated cluster."""
    kubeconfig = Path(env["ORCHESTRATOR_STATE_DIR"]) / "sim" / "kubeconfig"
    command = ["kubectl", "--kubeconfig", str(kubeconfig), "--context", f"sim-{cluster}", "-n", "addtocloud"]
    result = subprocess.run([*command, *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def deploy(env: dict[str, str]) -> None:
    deployed = run_cli("deploy", "api", "--env", "local", env=env)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr


def disable_autoscaling(root: Path) -> None:
    local = root / "environments" / "local.yaml"
    text = local.read_text()
    assert "  autoscaling:\n    minReplicas: 2\n" in text
    local.write_text(text.replace("  autoscaling:\n", "  autoscaling:\n    enabled: false\n"))


def test_drift_names_scaled_replicas_and_edited_weights_but_not_what_others_own(
    tmp_path: Path, running_sim: dict[str, str]
) -> None:
    root = estate_with_strategy(tmp_path / "estate", ROLLING)
    env = {**running_sim, "ORCHESTRATOR_ROOT": str(root)}

    # The local environment autoscales: the committed HPA owns the Deployment's replicas.
    deploy(env)
    assert drift(env, "--exit-code")[0] == 0
    kubectl(env, "aws", "scale", "deployment", "api", "--replicas=7")
    code, out = drift(env, "--exit-code")
    assert code == 0, out
    assert "api in local" in out and "in sync" in out and "drifted" not in out

    # Without autoscaling the replicas are the commit's: a scale is drift, named by object and field.
    disable_autoscaling(root)
    deploy(env)
    report = drift_json(env)
    assert report["state"] == "in sync", report
    assert kubectl_json(env, "aws", "get", "deployment", "api", "-n", "addtocloud")["spec"]["replicas"] == 2
    kubectl(env, "aws", "scale", "deployment", "api", "--replicas=5")
    code, out = drift(env, "--exit-code")
    assert code == 1, out
    assert "aws: drifted (1 field)" in out
    assert "Deployment/api spec.replicas: committed 2, live 5" in out
    assert "azure: in sync" in out and "gcp: in sync" in out

    # An edited primary route is named by route and field; another controller's route is not drift.
    weights = '[{"op":"replace","path":"/spec/http/0/route/0/weight","value":80},' + (
        '{"op":"replace","path":"/spec/http/0/route/1/weight","value":20}]'
    )
    kubectl(env, "azure", "patch", VS, "api", "--type=json", "-p", weights)
    foreign = json.dumps([{"op": "add", "path": "/spec/http/0", "value": FOREIGN_ROUTE}])
    kubectl(env, "gcp", "patch", VS, "api", "--type=json", "-p", foreign, "--field-manager=ops-team")
    report = drift_json(env)
    clusters = {c["cluster"]: c for c in report["clusters"]}
    assert report["state"] == "drifted"
    assert clusters["aws"]["lines"] == ["Deployment/api spec.replicas: committed 2, live 5"]
    assert clusters["azure"]["lines"] == [
        "VirtualService/api spec.http[name=primary].route[0].weight: committed 100, live 80",
        "VirtualService/api spec.http[name=primary].route[1].weight: committed 0, live 20",
    ]
    assert clusters["gcp"]["state"] == "in sync", clusters["gcp"]
    assert [c["checked"] for c in report["clusters"]] == [11, 11, 11]  # no HPA any more

    # status shows the same computation as a column, and names each field.
    status = run_cli("status", "api", "--env", "local", "-o", "json", env=env)
    assert status.returncode == 0, status.stderr
    [view] = json.loads(status.stdout)
    assert view["drift"]["state"] == "drifted" and view["drift"]["commit"] == report["commit"]
    assert [(c["cluster"], c["drift"]["state"], c["drift"]["fields"]) for c in view["clusters"]] == [
        ("aws", "drifted", 1),
        ("azure", "drifted", 2),
        ("gcp", "in sync", 0),
    ]
    text = run_cli("status", "api", "--env", "local", env={**env, "COLUMNS": "200"}).stdout
    assert "drifted (1 field)" in text and "in sync" in text
    assert "DRIFT aws: Deployment/api spec.replicas: committed 2, live 5" in text

    # diff puts the commit between rendered and live: nothing new to commit, the drift named.
    shown = run_cli("diff", "api", "--env", "local", "--cluster", "aws", "--exit-code", env=env)
    assert shown.returncode == 1, shown.stdout + shown.stderr
    assert "Deployment/api  rendered↔committed: same" in shown.stdout
    assert "committed↔live: drifted (1 field)" in shown.stdout
    assert "drift Deployment/api spec.replicas: committed 2, live 5" in shown.stdout
    as_json = json.loads(
        run_cli("diff", "api", "--env", "local", "--cluster", "aws", "-o", "json", env=env).stdout
    )
    [(name, entry)] = as_json["clusters"]["aws"]["objects"].items()
    assert name == "Deployment/api" and entry["rendered_vs_committed"] == ""
    assert entry["committed_vs_live"]["fields"] == [{"path": "spec.replicas", "committed": 2, "live": 5}]

    # A deploy puts the committed state back: nothing drifts any more (the foreign route stays).
    deploy(env)
    assert drift(env, "--exit-code")[0] == 0
    routes = kubectl_json(env, "gcp", "get", VS, "api", "-n", "addtocloud")["spec"]["http"]
    assert [r["name"] for r in routes] == ["ops-debug", "primary"]


def test_a_missing_object_a_rollout_under_way_and_a_rolled_back_commit(
    tmp_path: Path, running_sim: dict[str, str]
) -> None:
    env = {**running_sim, "ORCHESTRATOR_ROOT": str(estate_with_strategy(tmp_path / "estate", PAUSED))}
    first = run_cli("deploy", "api", "--env", "local", "--strategy", "rolling", env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    kubectl(env, "gcp", "delete", "poddisruptionbudget", "api")
    code, out = drift(env, "api", "--env", "local", "--exit-code")
    assert code == 1, out
    assert "gcp: drifted (1 field)" in out and "PodDisruptionBudget/api: committed, missing live" in out
    # Another environment of the same repository has nothing committed for api: nothing to compare.
    code, out = drift(env, "api", "--env", "dev", "--exit-code")
    assert code == 0 and out.startswith("api in dev (commit ") and out.rstrip().endswith("not committed"), out

    # A canary paused at 20 %: its weights differ from the commit by design.
    paused = run_cli("deploy", "api", "--env", "local", "--set", "env.RELEASE=2", env=env)
    assert paused.returncode == 0, paused.stdout + paused.stderr
    deployment = json.loads(run_cli("history", "api", "-o", "json", env=env).stdout)[0]
    assert deployment["phase"] == "Paused"
    code, out = drift(env, "--exit-code")
    assert code == 0, out
    assert f"api in local (commit {deployment['gitops_commit'][:12]}): rolling out" in out
    assert f"deployment {deployment['id'][:8]} is Paused" in out
    status = json.loads(run_cli("status", "api", "--env", "local", "-o", "json", env=env).stdout)
    assert {c["drift"]["state"] for c in status[0]["clusters"]} == {"rolling out"}

    # Aborted, the clusters went back to the release before; the commit still holds the new one: drift,
    # with the reason.
    assert run_cli("abort", deployment["id"][:8], env=env).returncode == 0
    report = drift_json(env)
    assert report["state"] == "drifted" and report["rollout"] is None
    assert "ended Aborted" in report["note"]
    aws = report["clusters"][0]
    assert "Deployment/api spec.template.metadata.labels.version: committed v" in " ".join(aws["lines"])
