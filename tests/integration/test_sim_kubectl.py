"""The real `kubectl` against the emulator: server-side apply, get, get -o yaml, rollout status,
conflicts, client-side apply, delete. kubectl must be installed; these tests fail without it."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from orchestrator.sim.controller import DEPLOYMENTS
from orchestrator.sim.server import SimServer

MANIFEST = """\
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: shop, labels: {app: api}}
spec:
  replicas: 3
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api, version: v1}}
    spec:
      containers:
      - name: app
        image: registry.local/api:1
        ports: [{containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: shop, labels: {app: api}}
spec:
  selector: {app: api}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata: {name: api, namespace: shop}
spec:
  host: api
  subsets:
  - {name: stable, labels: {version: v1}}
---
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: api, namespace: shop}
spec:
  hosts: [api]
  http:
  - route:
    - destination: {host: api, subset: stable}
      weight: 100
"""


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimServer]:
    with SimServer(clusters=("aws", "gcp"), state_dir=tmp_path / "sim", ready_delay=0.2) as server:
        yield server


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    path = tmp_path / "api.yaml"
    path.write_text(MANIFEST)
    return path


def kubectl(
    sim: SimServer, *args: str, context: str = "sim-aws", timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "KUBECONFIG": str(sim.kubeconfig_path),
        "HOME": str(sim.state_dir),  # its own discovery cache
    }
    return subprocess.run(
        ["kubectl", "--context", context, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"kubectl {result.args}: {result.stdout}\n{result.stderr}"
    return result.stdout


def test_server_side_apply_get_and_rollout_status(sim: SimServer, manifest: Path) -> None:
    out = ok(kubectl(sim, "apply", "--server-side", "-f", str(manifest)))
    assert out.splitlines() == [
        "namespace/shop serverside-applied",
        "deployment.apps/api serverside-applied",
        "service/api serverside-applied",
        "destinationrule.networking.istio.io/api serverside-applied",
        "virtualservice.networking.istio.io/api serverside-applied",
    ]
    ok(kubectl(sim, "rollout", "status", "-n", "shop", "deployment/api", "--timeout=30s"))

    table = ok(kubectl(sim, "get", "deployments", "-n", "shop")).splitlines()
    assert table[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert table[1].split()[:4] == ["api", "3/3", "3", "3"]
    pods = ok(kubectl(sim, "get", "pods", "-n", "shop", "-l", "app=api", "-o", "name")).split()
    assert len(pods) == 3

    live = yaml.safe_load(ok(kubectl(sim, "get", "deployment", "api", "-n", "shop", "-o", "yaml")))
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.local/api:1"
    assert live["status"]["availableReplicas"] == 3
    assert live["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"

    vs = json.loads(
        ok(
            kubectl(
                sim, "get", "virtualservices.v1beta1.networking.istio.io", "api", "-n", "shop", "-o", "json"
            )
        )
    )
    assert vs["spec"]["http"][0]["route"][0]["weight"] == 100

    # The other context is another cluster: nothing there.
    assert (
        "No resources found" in kubectl(sim, "get", "deployments", "-n", "default", context="sim-gcp").stderr
    )


def test_reapplying_an_unchanged_manifest_changes_nothing(sim: SimServer, manifest: Path) -> None:
    ok(kubectl(sim, "apply", "--server-side", "-f", str(manifest)))
    store = sim.cluster("aws").store
    before = store.get(DEPLOYMENTS, "shop", "api")["metadata"]["resourceVersion"]
    generation = store.get(DEPLOYMENTS, "shop", "api")["metadata"]["generation"]
    ok(kubectl(sim, "apply", "--server-side", "-f", str(manifest)))
    after = store.get(DEPLOYMENTS, "shop", "api")
    # The controller may have written status meanwhile, never the spec.
    assert after["metadata"]["generation"] == generation
    assert int(after["metadata"]["resourceVersion"]) >= int(before)
    managers = [(m["manager"], m["operation"]) for m in after["metadata"]["managedFields"]]
    assert managers == [("kubectl", "Apply")]


def test_an_image_change_rolls_out_and_a_conflicting_apply_needs_force(
    sim: SimServer, manifest: Path
) -> None:
    ok(kubectl(sim, "apply", "--server-side", "-f", str(manifest)))
    ok(kubectl(sim, "rollout", "status", "-n", "shop", "deployment/api", "--timeout=30s"))
    ok(kubectl(sim, "set", "image", "-n", "shop", "deployment/api", "app=registry.local/api:2"))
    out = ok(kubectl(sim, "rollout", "status", "-n", "shop", "deployment/api", "--timeout=30s"))
    assert out.strip().splitlines()[-1] == 'deployment "api" successfully rolled out'
    rs = ok(
        kubectl(sim, "get", "replicasets", "-n", "shop", "-o", "jsonpath={.items[*].spec.replicas}")
    ).split()
    assert sorted(rs) == ["0", "3"]

    conflict = kubectl(sim, "apply", "--server-side", "-f", str(manifest))
    assert conflict.returncode == 1
    assert 'conflict with "kubectl-set"' in conflict.stderr
    assert '.spec.template.spec.containers[name="app"].image' in conflict.stderr

    ok(kubectl(sim, "apply", "--server-side", "--force-conflicts", "-f", str(manifest)))
    image = ok(
        kubectl(
            sim,
            "get",
            "deploy",
            "api",
            "-n",
            "shop",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}",
        )
    )
    assert image == "registry.local/api:1"


def test_rollout_status_reports_an_exceeded_progress_deadline(sim: SimServer, manifest: Path) -> None:
    broken = MANIFEST.replace(
        "    metadata: {labels: {app: api, version: v1}}",
        "    metadata: {labels: {app: api, version: v1},"
        " annotations: {sim.addtocloud.io/failure: never-ready}}",
    ).replace("  replicas: 3\n", "  replicas: 3\n  progressDeadlineSeconds: 2\n")
    manifest.write_text(broken)
    ok(kubectl(sim, "apply", "--server-side", "-f", str(manifest)))
    result = kubectl(sim, "rollout", "status", "-n", "shop", "deployment/api", "--timeout=30s")
    assert result.returncode == 1
    assert 'deployment "api" exceeded its progress deadline' in result.stderr


def test_client_side_apply_and_patch_work_too(sim: SimServer, manifest: Path) -> None:
    ok(kubectl(sim, "apply", "-f", str(manifest)))
    ok(
        kubectl(
            sim,
            "patch",
            "-n",
            "shop",
            "deployment/api",
            "-p",
            '{"spec":{"template":{"spec":{"containers":[{"name":"app","env":[{"name":"MODE","value":"x"}]}]}}}}',
        )
    )
    live = json.loads(ok(kubectl(sim, "get", "deployment", "api", "-n", "shop", "-o", "json")))
    container = live["spec"]["template"]["spec"]["containers"][0]
    assert container["env"] == [{"name": "MODE", "value": "x"}]
    assert container["image"] == "registry.local/api:1"
    assert "kubectl.kubernetes.io/last-applied-configuration" in live["metadata"]["annotations"]


def test_delete_waits_until_everything_is_gone(sim: SimServer, manifest: Path) -> None:
    ok(kubectl(sim, "apply", "--server-side", "-f", str(manifest)))
    ok(kubectl(sim, "delete", "deployment/api", "-n", "shop"))
    assert ok(kubectl(sim, "get", "pods", "-n", "shop", "-o", "name")) == ""
    out = ok(kubectl(sim, "delete", "-f", str(manifest), "--ignore-not-found"))
    assert 'namespace "shop" deleted' in out
    assert "shop" not in ok(kubectl(sim, "get", "namespaces", "-o", "name"))


def test_moving_from_client_side_to_server_side_apply_migrates_field_ownership(
    sim: SimServer, manifest: Path
) -> None:
    ok(kubectl(sim, "apply", "-f", str(manifest)))
    changed = manifest.with_name("changed.yaml")
    changed.write_text(MANIFEST.replace("registry.local/api:1", "registry.local/api:2"))

    # As on a real cluster: a changed value owned by client-side apply conflicts ...
    conflict = kubectl(sim, "apply", "--server-side", "-f", str(changed))
    assert conflict.returncode == 1
    assert 'conflict with "kubectl-client-side-apply"' in conflict.stderr
    # ... an unchanged one is co-owned, and kubectl then rewrites managedFields to hand it over ...
    ok(kubectl(sim, "apply", "--server-side", "-f", str(manifest)))
    managers = ok(
        kubectl(
            sim, "get", "deploy", "api", "-n", "shop", "-o", "jsonpath={.metadata.managedFields[*].manager}"
        )
    ).split()
    assert "kubectl-client-side-apply" not in managers
    # ... after which the change applies cleanly.
    ok(kubectl(sim, "apply", "--server-side", "-f", str(changed)))


def columns(line: str) -> list[str]:
    """A kubectl table line split on its column gaps (two or more spaces; a cell may hold one)."""
    return [cell for cell in re.split(r"\s{2,}", line.strip()) if cell]


def test_get_wide_shows_the_api_servers_columns(sim: SimServer, manifest: Path) -> None:
    ok(kubectl(sim, "apply", "--server-side", "-f", str(manifest)))
    ok(kubectl(sim, "rollout", "status", "-n", "shop", "deployment/api", "--timeout=30s"))
    ok(
        kubectl(
            sim, "create", "configmap", "settings", "-n", "shop", "--from-literal=a=1", "--from-literal=b=2"
        )
    )

    deploy = ok(kubectl(sim, "get", "deploy", "-n", "shop", "-o", "wide")).splitlines()
    assert columns(deploy[0]) == [
        "NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"
    ]  # fmt: skip
    row = columns(deploy[1])
    assert row[:4] == ["api", "3/3", "3", "3"]
    assert row[5:] == ["app", "registry.local/api:1", "app=api"]

    rs = ok(kubectl(sim, "get", "rs", "-n", "shop", "-o", "wide")).splitlines()
    assert columns(rs[0]) == [
        "NAME",
        "DESIRED",
        "CURRENT",
        "READY",
        "AGE",
        "CONTAINERS",
        "IMAGES",
        "SELECTOR",
    ]
    rs_row = columns(rs[1])
    assert rs_row[0].startswith("api-") and rs_row[1:4] == ["3", "3", "3"]
    assert rs_row[5:7] == ["app", "registry.local/api:1"]
    assert rs_row[7].startswith("app=api,pod-template-hash=")

    pods = ok(kubectl(sim, "get", "pods", "-n", "shop", "-o", "wide")).splitlines()
    assert columns(pods[0]) == [
        "NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED NODE", "READINESS GATES"
    ]  # fmt: skip
    pod = columns(pods[1])
    assert pod[1:4] == ["1/1", "Running", "0"]
    assert re.fullmatch(r"10\.244\.\d+\.\d+", pod[5]) and pod[6:] == ["sim-node-1", "<none>", "<none>"]

    svc = ok(kubectl(sim, "get", "svc", "api", "-n", "shop", "-o", "wide")).splitlines()
    assert columns(svc[0]) == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE", "SELECTOR"]
    svc_row = columns(svc[1])
    assert svc_row[1] == "ClusterIP" and svc_row[3:5] == ["<none>", "80/TCP"] and svc_row[6] == "app=api"

    ok(
        kubectl(
            sim, "create", "service", "nodeport", "web", "-n", "shop", "--tcp=80:8080", "--node-port=30080"
        )
    )
    web = columns(ok(kubectl(sim, "get", "svc", "web", "-n", "shop", "--no-headers")))
    assert (web[1], web[4]) == ("NodePort", "80:30080/TCP")

    cm = ok(kubectl(sim, "get", "cm", "settings", "-n", "shop")).splitlines()
    assert columns(cm[0]) == ["NAME", "DATA", "AGE"]
    assert columns(cm[1])[:2] == ["settings", "2"]

    events = ok(kubectl(sim, "get", "events", "-n", "shop")).splitlines()
    assert columns(events[0]) == ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert any(columns(line)[1:4] == ["Normal", "ScalingReplicaSet", "deployment/api"] for line in events[1:])

    # Without -o wide the priority-1 columns stay hidden, as on a real cluster.
    plain = ok(kubectl(sim, "get", "deploy", "-n", "shop")).splitlines()
    assert columns(plain[0]) == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    vs = ok(kubectl(sim, "get", "virtualservice", "api", "-n", "shop")).splitlines()
    assert columns(vs[0]) == ["NAME", "GATEWAYS", "HOSTS", "AGE"]
    assert columns(vs[1])[:2] == ["api", '["api"]']


HPA_AND_PDB = """\
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: api, namespace: shop}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: api}
  minReplicas: 2
  maxReplicas: 5
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 70}}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: api, namespace: shop}
spec:
  minAvailable: 1
  selector: {matchLabels: {app: api}}
"""


def test_get_autoscalers_and_disruption_budgets(sim: SimServer, manifest: Path, tmp_path: Path) -> None:
    ok(kubectl(sim, "apply", "--server-side", "-f", str(manifest)))
    extra = tmp_path / "hpa.yaml"
    extra.write_text(HPA_AND_PDB)
    ok(kubectl(sim, "apply", "--server-side", "-f", str(extra)))
    hpa = ok(kubectl(sim, "get", "hpa", "-n", "shop")).splitlines()
    assert columns(hpa[0]) == ["NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "AGE"]
    assert columns(hpa[1])[:5] == ["api", "Deployment/api", "cpu: <unknown>/70%", "2", "5"]
    pdb = ok(kubectl(sim, "get", "pdb", "-n", "shop")).splitlines()
    assert columns(pdb[0]) == ["NAME", "MIN AVAILABLE", "MAX UNAVAILABLE", "ALLOWED DISRUPTIONS", "AGE"]
    assert columns(pdb[1])[:3] == ["api", "1", "N/A"]


def test_explain_reads_the_servers_openapi_v3(sim: SimServer) -> None:
    out = ok(kubectl(sim, "explain", "deployment.spec.replicas"))
    assert "GROUP:      apps" in out and "KIND:       Deployment" in out
    assert "FIELD: replicas <integer>" in out
    assert "Number of desired pods." in out
    containers = ok(kubectl(sim, "explain", "pods.spec.containers.image"))
    assert "FIELD: image <string>" in containers
    istio = ok(kubectl(sim, "explain", "virtualservices.spec.http.route.weight"))
    assert "GROUP:      networking.istio.io" in istio and "FIELD: weight <integer>" in istio
    missing = kubectl(sim, "explain", "deployment.spec.replcas")
    assert missing.returncode == 1
    assert 'field "replcas" does not exist' in missing.stderr


def test_auth_can_i_answers_for_the_sims_token(sim: SimServer) -> None:
    allowed = kubectl(sim, "auth", "can-i", "create", "deployments", "-n", "shop")
    assert (allowed.returncode, allowed.stdout) == (0, "yes\n")
    assert ok(kubectl(sim, "auth", "can-i", "delete", "virtualservices.networking.istio.io")) == "yes\n"
    rules = ok(kubectl(sim, "auth", "can-i", "--list", "-n", "shop")).splitlines()
    assert columns(rules[0])[:2] == ["Resources", "Non-Resource URLs"]
    assert columns(rules[1]) == ["*.*", "[]", "[]", "[*]"]
