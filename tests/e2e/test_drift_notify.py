"""`on-drift` as users meet it against `orchestrator sim up`: the first `drift` (or `status`) that finds a
cluster drifted from its commit announces it through the outbox — once, naming the service, environment,
cluster and what differs — and checking again says nothing new; a different drift is new, and so is the
same drift coming back after the cluster was put back in sync."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.e2e.test_drift_cli import deploy, disable_autoscaling, drift, kubectl
from tests.e2e.test_gitops_cli import ROLLING
from tests.fakes.receiver import Receiver
from tests.helpers import run_cli
from tests.integration.rollout_fixtures import estate_with_strategy


def bodies(receiver: Receiver, path: str) -> list[dict[str, Any]]:
    return [r.json() for r in receiver.delivered if r.path == path]


def test_a_new_drift_is_announced_once_with_its_cluster_and_fields(
    tmp_path: Path, running_sim: dict[str, str]
) -> None:
    with Receiver() as receiver:
        root = estate_with_strategy(tmp_path / "estate", ROLLING)
        disable_autoscaling(root)
        local = root / "environments" / "local.yaml"
        local.write_text(
            local.read_text()
            + "notifications:\n"
            + f"  - {{name: ops, type: webhook, url: '{receiver.url}/webhook', triggers: [on-drift]}}\n"
            + f"  - {{name: team, type: slack, url: '{receiver.url}/slack', triggers: [on-drift]}}\n"
        )
        env = {**running_sim, "ORCHESTRATOR_ROOT": str(root)}
        deploy(env)
        assert drift(env, "--exit-code")[0] == 0
        assert receiver.received == []  # in sync: nothing to say (and the deploy fired no on-drift)

        kubectl(env, "aws", "scale", "deployment", "api", "--replicas=5")
        assert drift(env, "--exit-code")[0] == 1
        [announced] = bodies(receiver, "/hook/webhook")
        assert announced["trigger"] == "on-drift"
        assert announced["deployment"]["service"] == "api"
        assert announced["deployment"]["environment"] == "local"
        assert announced["drift"]["cluster"] == "aws"
        assert announced["drift"]["lines"] == ["Deployment/api spec.replicas: committed 2, live 5"]
        assert announced["summary"].startswith("api in local: drifted in aws from commit ")
        [slack] = bodies(receiver, "/hook/slack")
        text = json.dumps(slack)  # Block Kit: the header, fields and the drift section
        assert "drifted in aws" in text and "Deployment/api spec.replicas: committed 2, live 5" in text

        # Checked again, by drift and by status: the same drift is not announced again.
        assert drift(env, "--exit-code")[0] == 1
        status = run_cli("status", "api", "--env", "local", "-o", "json", env=env)
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)[0]["drift"]["state"] == "drifted"
        assert len(bodies(receiver, "/hook/webhook")) == 1 and len(bodies(receiver, "/hook/slack")) == 1

        # A different drift is new; status finds it and announces it.
        kubectl(env, "aws", "scale", "deployment", "api", "--replicas=6")
        assert run_cli("status", "api", "--env", "local", env=env).returncode == 0
        *_, second = bodies(receiver, "/hook/webhook")
        assert second["drift"]["lines"] == ["Deployment/api spec.replicas: committed 2, live 6"]
        assert len(bodies(receiver, "/hook/webhook")) == 2

        # Put back in sync, then the first drift again: new again.
        kubectl(env, "aws", "scale", "deployment", "api", "--replicas=2")
        assert drift(env, "--exit-code")[0] == 0
        kubectl(env, "aws", "scale", "deployment", "api", "--replicas=5")
        assert drift(env, "--exit-code")[0] == 1
        webhooks = bodies(receiver, "/hook/webhook")
        assert len(webhooks) == 3
        assert webhooks[-1]["drift"]["lines"] == ["Deployment/api spec.replicas: committed 2, live 5"]
