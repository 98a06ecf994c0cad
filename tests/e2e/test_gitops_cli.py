"""Desired state in git, as a user meets it: `deploy` commits before it applies, applies what it committed,
and fails with nothing applied when the GitOps repository refuses."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.e2e.test_deploy_cli import CLUSTERS, kubectl_json
from tests.helpers import run_cli
from tests.integration.rollout_fixtures import estate_with_strategy

ROLLING = "strategy:\n  rolling: {}\n"


def git(repository: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "--git-dir", str(repository), *args], capture_output=True, text=True, check=True
    ).stdout


def contains(live: Any, committed: Any) -> bool:
    """Every field the commit sets is set to the same value live (the server adds status and defaults)."""
    if isinstance(committed, dict):
        return isinstance(live, dict) and all(
            k in live and contains(live[k], v) for k, v in committed.items()
        )
    if isinstance(committed, list):
        return isinstance(live, list) and len(live) == len(committed) and all(map(contains, live, committed))
    return bool(live == committed)


def history(env: dict[str, str]) -> list[dict[str, Any]]:
    shown = run_cli("history", "api", "--env", "local", "-o", "json", env=env)
    assert shown.returncode == 0, shown.stderr
    return list(json.loads(shown.stdout))


def test_deploy_commits_then_applies_exactly_the_commit(tmp_path: Path, running_sim: dict[str, str]) -> None:
    env = {**running_sim, "ORCHESTRATOR_ROOT": str(estate_with_strategy(tmp_path / "estate", ROLLING))}
    deployed = run_cli("deploy", "api", "--env", "local", env=env)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr

    repository = Path(env["ORCHESTRATOR_STATE_DIR"]) / "gitops" / "default.git"
    [record] = history(env)
    commit = record["gitops_commit"]
    assert git(repository, "rev-parse", "main").strip() == commit
    trailers = git(repository, "log", "-1", "--format=%(trailers:key=Deployment-Id,valueonly)", commit)
    assert trailers.strip() == record["id"]
    assert (
        git(repository, "log", "-1", "--format=%(trailers:key=Release,valueonly)", commit).strip()
        == (record["release"]["id"])
    )
    files = git(repository, "ls-tree", "-r", "--name-only", commit).split()
    assert files == [f"local/{cluster}/api.yaml" for cluster in CLUSTERS]

    for cluster in CLUSTERS:
        committed = [
            o for o in yaml.safe_load_all(git(repository, "show", f"{commit}:local/{cluster}/api.yaml")) if o
        ]
        assert {o["kind"] for o in committed} >= {
            "Deployment",
            "Service",
            "VirtualService",
            "DestinationRule",
        }
        for obj in committed:
            namespace = obj["metadata"].get("namespace", "addtocloud")
            group, _, version = obj["apiVersion"].rpartition("/")
            kind = f"{obj['kind'].lower()}.{version}.{group}" if group else obj["kind"].lower()
            live = kubectl_json(env, cluster, "get", kind, obj["metadata"]["name"], "-n", namespace)
            assert contains(live, obj), f"{cluster}: live {obj['kind']}/{obj['metadata']['name']} differs"

    again = run_cli("deploy", "api", "--env", "local", env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert len(git(repository, "log", "--format=%H", "main").split()) == 1  # an unchanged release: no commit
    latest = history(env)[0]
    assert latest["gitops_commit"] == commit and latest["phase"] == "Succeeded"


def test_a_repository_that_refuses_fails_the_deployment_with_nothing_applied(
    tmp_path: Path, running_sim: dict[str, str]
) -> None:
    root = estate_with_strategy(tmp_path / "estate", ROLLING)
    environment = root / "environments" / "local.yaml"
    environment.write_text(environment.read_text() + "gitops: {repository: ../nowhere.git}\n")
    env = {**running_sim, "ORCHESTRATOR_ROOT": str(root)}
    deployed = run_cli("deploy", "api", "--env", "local", env=env)
    assert deployed.returncode == 1, deployed.stdout + deployed.stderr
    assert "nowhere.git is unreachable" in deployed.stdout + deployed.stderr
    [record] = history(env)
    assert record["phase"] == "Failed" and record["gitops_commit"] is None
    assert "nothing was applied" in record["message"]
    for cluster in CLUSTERS:
        listed = kubectl_json(env, cluster, "get", "deployments", "-n", "addtocloud")
        assert listed["items"] == []
