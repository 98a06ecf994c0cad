"""A team's own service whose pods read a ConfigMap, deployed with the CLI against `orchestrator sim up`: a
bad release is rolled back with the stable configuration untouched, a good one replaces it."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.test_deploy_cli import CLUSTERS, kubectl_json
from tests.helpers import run_cli
from tests.integration.user_service import GATED, IMAGE, greeter_estate


def mounted(env: dict[str, str], cluster: str) -> str:
    deployment = kubectl_json(env, cluster, "get", "deployment", "greeter", "-n", "addtocloud")
    return str(deployment["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"])


def config_maps(env: dict[str, str], cluster: str) -> dict[str, tuple[dict[str, str], str]]:
    """The greeter's ConfigMaps in a cluster: name → (data, resourceVersion)."""
    listed = kubectl_json(
        env, cluster, "get", "configmaps", "-n", "addtocloud", "-l", "app.kubernetes.io/name=greeter"
    )
    return {c["metadata"]["name"]: (c["data"], c["metadata"]["resourceVersion"]) for c in listed["items"]}


def test_a_rolled_back_release_leaves_the_stable_config_and_a_promoted_one_replaces_it(
    tmp_path: Path, running_sim: dict[str, str]
) -> None:
    greeter_estate(tmp_path / "estate", GATED)
    env = {**running_sim, "ORCHESTRATOR_ROOT": str(tmp_path / "estate")}
    deploy = ("deploy", "greeter", "--env", "local", "--image", IMAGE)

    first = run_cli(*deploy, env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    stable = {c: mounted(env, c) for c in CLUSTERS}
    before = {c: config_maps(env, c) for c in CLUSTERS}
    for cluster in CLUSTERS:
        assert stable[cluster].startswith("greeter-config-")
        assert list(before[cluster]) == [stable[cluster]]
        assert before[cluster][stable[cluster]][0] == {"greeting": "hello"}

    bad = run_cli(*deploy, "--set", "greeting=bonjour", "--set", "sim.errorRate=0.5", env=env)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    status = json.loads(run_cli("status", "greeter", "--env", "local", "-o", "json", env=env).stdout)
    assert status[0]["phase"] == "RolledBack"
    for cluster in CLUSTERS:
        assert mounted(env, cluster) == stable[cluster]
        assert config_maps(env, cluster) == before[cluster]  # same object, same data, never written

    good = run_cli(*deploy, "--set", "greeting=bonjour", env=env)
    assert good.returncode == 0, good.stdout + good.stderr
    for cluster in CLUSTERS:
        now = mounted(env, cluster)
        assert now != stable[cluster]
        assert {name: data for name, (data, _) in config_maps(env, cluster).items()} == {
            now: {"greeting": "bonjour"}
        }  # the old one pruned after the promotion
