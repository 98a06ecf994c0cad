"""A user's own service whose pods read a ConfigMap and a Secret: each release brings its own (named by
content), so the stable pods read their configuration throughout a canary, a rollback leaves it exactly
as it was and removes what the canary added, and a promotion prunes the old one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from orchestrator.config import Project
from orchestrator.render.engine import Renderer
from orchestrator.render.generators import GENERATED_FROM
from orchestrator.rollout.engine import DeployRequest, RolloutEngine
from orchestrator.rollout.workload import INTRODUCED_BY, ClusterWorkload
from orchestrator.sim.server import SimServer
from orchestrator.store.models import Phase
from tests.integration.rollout_fixtures import CLUSTERS, sim_client, sim_engine
from tests.integration.user_service import FAST, GATED, IMAGE, greeter_estate

NS = "/api/v1/namespaces/addtocloud"
DEPLOYMENTS = "/apis/apps/v1/namespaces/addtocloud/deployments"


def request(**overrides: Any) -> DeployRequest:
    return DeployRequest(
        service="greeter", environment="local", git_commit="c" * 40, image=IMAGE, overrides=overrides
    )


def generated_names(project: Project, **overrides: Any) -> tuple[str, str]:
    """The (ConfigMap, Secret) names a release renders in the first cluster."""
    (rendered, *_) = Renderer(project).render_environment(
        project.pipeline("greeter"), project.environment("local"), overrides=overrides, image=IMAGE
    )
    by_kind = {
        o["kind"]: o["metadata"]["name"] for o in rendered.objects if o["kind"] in ("ConfigMap", "Secret")
    }
    return by_kind["ConfigMap"], by_kind["Secret"]


def get(sim: SimServer, cluster: str, path: str) -> dict[str, Any] | None:
    return sim_client(sim, cluster).get(path)


def pod_reads(sim: SimServer, cluster: str, instance: str) -> list[tuple[str, dict[str, str], str]]:
    """For each running pod of `instance`: the ConfigMap it mounts, that ConfigMap's data, its Secret."""
    client = sim_client(sim, cluster)
    reads = []
    pods = client.list(f"{NS}/pods", label_selector=f"app.kubernetes.io/instance={instance}")
    for pod in pods:
        if pod["metadata"].get("deletionTimestamp"):
            continue
        spec = pod["spec"]
        config_name = spec["volumes"][0]["configMap"]["name"]
        config = client.get(f"{NS}/configmaps/{config_name}")
        assert config is not None, f"{cluster}: pod {pod['metadata']['name']} mounts a missing {config_name}"
        reads.append((config_name, config["data"], spec["containers"][0]["envFrom"][0]["secretRef"]["name"]))
    return reads


def snapshot(sim: SimServer, cluster: str) -> dict[str, Any]:
    admin = get(sim, cluster, f"{NS}/services/greeter-admin")
    return {
        "stable": pod_reads(sim, cluster, "greeter"),
        "canary": pod_reads(sim, cluster, "greeter-canary"),
        "admin": None if admin is None else admin["metadata"].get("annotations", {}).get(INTRODUCED_BY, ""),
    }


@pytest.fixture
def snapshots() -> list[tuple[str, dict[str, Any]]]:
    return []


def watched_engine(
    project: Project,
    sessions: sessionmaker[Session],
    sim: SimServer,
    snapshots: list[tuple[str, dict[str, Any]]],
) -> RolloutEngine:
    """An engine that, as each step starts, records what the first wave's pods read."""
    engine = sim_engine(project, sessions, sim)

    def report(event: dict[str, Any]) -> None:
        if event["type"] == "step":
            snapshots.append((event["label"], snapshot(sim, "aws")))

    engine.report = report
    return engine


def test_a_rolled_back_canary_leaves_the_stable_configuration_as_it_was(
    tmp_path: Path,
    sessions: sessionmaker[Session],
    sim: SimServer,
    snapshots: list[tuple[str, dict[str, Any]]],
) -> None:
    project = greeter_estate(tmp_path / "estate", GATED)
    engine = watched_engine(project, sessions, sim, snapshots)
    assert engine.run(engine.create(request())) is Phase.SUCCEEDED
    old_config, old_keys = generated_names(project)
    assert old_config.startswith("greeter-config-") and len(old_config) == len("greeter-config-") + 10
    before = {c: get(sim, c, f"{NS}/configmaps/{old_config}") for c in CLUSTERS}
    assert all(b is not None and b["data"] == {"greeting": "hello"} for b in before.values())

    bad = {"greeting": "bonjour", "apiKey": "second-key", "admin": True, "sim": {"errorRate": 0.5}}
    new_config, new_keys = generated_names(project, **bad)
    assert (new_config, new_keys) != (old_config, old_keys)
    snapshots.clear()
    assert engine.run(engine.create(request(**bad))) is Phase.ROLLED_BACK
    # After the rollback, the stable pods (the canary's are going away with their configuration).
    snapshots.append(
        ("after rollback", {"stable": pod_reads(sim, "aws", "greeter"), "canary": [], "admin": None})
    )
    assert snapshots[0][1]["admin"] is None  # not there before the canary
    assert {s["admin"] for label, s in snapshots if label.startswith("pause")} != {None}

    # Throughout the canary (as each step started) the stable pods read the old configuration...
    stable_reads = {
        (name, tuple(sorted(data.items())), keys) for _, s in snapshots for name, data, keys in s["stable"]
    }
    assert stable_reads == {(old_config, (("greeting", "hello"),), old_keys)}
    # ...while the canary pods read the new one.
    canary_reads = {
        (name, tuple(sorted(data.items())), keys) for _, s in snapshots for name, data, keys in s["canary"]
    }
    assert canary_reads == {(new_config, (("greeting", "bonjour"),), new_keys)}
    assert [label.split(" · ")[0] for label, s in snapshots if s["canary"]][:2] == [
        "setWeight 50",
        "pause 0.3s",
    ]

    for cluster in CLUSTERS:
        # The stable configuration is exactly as it was: same objects, same content, same resourceVersion.
        after = get(sim, cluster, f"{NS}/configmaps/{old_config}")
        assert (
            after is not None
            and after["metadata"]["resourceVersion"] == before[cluster]["metadata"]["resourceVersion"]
        )
        assert after["data"] == {"greeting": "hello"}
        assert after["metadata"]["annotations"][GENERATED_FROM] == "greeter-config"
        assert get(sim, cluster, f"{NS}/secrets/{old_keys}") is not None
        stable = get(sim, cluster, f"{DEPLOYMENTS}/greeter")
        assert stable is not None
        assert stable["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"] == old_config
        # What the canary added is gone again: its ConfigMap and Secret, and the Service it introduced.
        assert get(sim, cluster, f"{NS}/configmaps/{new_config}") is None
        assert get(sim, cluster, f"{NS}/secrets/{new_keys}") is None
        assert get(sim, cluster, f"{NS}/services/greeter-admin") is None
    canary = get(sim, "aws", f"{DEPLOYMENTS}/greeter-canary")
    assert canary is not None and canary["spec"]["replicas"] == 0
    (rendered, *_) = Renderer(project).render_environment(
        project.pipeline("greeter"), project.environment("local"), overrides=bad, image=IMAGE
    )
    observed = ClusterWorkload(sim_client(sim, "aws"), rendered).observe()
    assert observed.at_rest and observed.stable_version not in (None, rendered.version)


def test_a_promotion_prunes_the_old_configuration_only_once_it_is_done(
    tmp_path: Path,
    sessions: sessionmaker[Session],
    sim: SimServer,
    snapshots: list[tuple[str, dict[str, Any]]],
) -> None:
    project = greeter_estate(tmp_path / "estate", FAST)
    engine = watched_engine(project, sessions, sim, snapshots)
    assert engine.run(engine.create(request())) is Phase.SUCCEEDED
    old_config, old_keys = generated_names(project)
    good = {"greeting": "bonjour", "apiKey": "second-key", "admin": True}
    new_config, new_keys = generated_names(project, **good)
    snapshots.clear()
    assert engine.run(engine.create(request(**good))) is Phase.SUCCEEDED

    # During the canary both configurations existed, each read by its own pods.
    during = [s for label, s in snapshots if label.startswith("pause")]
    assert during and all(
        {r[0] for r in s["stable"]} == {old_config} and {r[0] for r in s["canary"]} == {new_config}
        for s in during
    )
    # The Service this release adds was created with the canary, marked as the canary's until promotion.
    (rendered, *_) = Renderer(project).render_environment(
        project.pipeline("greeter"), project.environment("local"), overrides=good, image=IMAGE
    )
    assert {s["admin"] for s in during} == {rendered.version}

    for cluster in CLUSTERS:
        assert {r[0] for r in pod_reads(sim, cluster, "greeter")} == {new_config}
        config = get(sim, cluster, f"{NS}/configmaps/{new_config}")
        assert config is not None and config["data"] == {"greeting": "bonjour"}
        assert get(sim, cluster, f"{NS}/secrets/{new_keys}") is not None
        assert get(sim, cluster, f"{NS}/configmaps/{old_config}") is None  # pruned after the promotion
        assert get(sim, cluster, f"{NS}/secrets/{old_keys}") is None
        admin = get(sim, cluster, f"{NS}/services/greeter-admin")
        assert admin is not None
        assert INTRODUCED_BY not in admin["metadata"].get("annotations", {})  # the release's own now
