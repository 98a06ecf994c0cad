"""Fixtures for rollout tests: three emulated clusters, a private store, an engine wired to both."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest
from sqlalchemy.orm import Session, sessionmaker

from orchestrator.config import ClusterConfig, Environment, Pipeline, Project
from orchestrator.kube.client import KubeClient, RetryPolicy
from orchestrator.rollout.desired import GitDesiredState
from orchestrator.rollout.engine import RolloutEngine
from orchestrator.rollout.gates import AnalysisGate, AnalysisGateRunner
from orchestrator.runtime import open_store
from orchestrator.sim.server import SimServer
from tests.helpers import copy_estate

FAST_CANARY = """strategy:
  canary:
    steps:
      - setWeight: 10
      - pause: {duration: 0.2s}
      - setWeight: 50
      - pause: {duration: 0.2s}
"""


CLUSTERS = ("aws", "azure", "gcp")
_NS = "/namespaces/addtocloud"
DEPLOYMENT = f"/apis/apps/v1{_NS}/deployments/api"
CANARY = f"/apis/apps/v1{_NS}/deployments/api-canary"
VS = f"/apis/networking.istio.io/v1beta1{_NS}/virtualservices/api"
DR = f"/apis/networking.istio.io/v1beta1{_NS}/destinationrules/api"


# A route another team owns on the api's VirtualService: the orchestrator must leave it exactly as it is.
FOREIGN_ROUTE: dict[str, Any] = {
    "name": "ops-debug",
    "match": [{"headers": {"x-debug": {"exact": "1"}}}],
    "route": [{"destination": {"host": "debug.ops.svc.cluster.local"}, "weight": 100}],
}


def live(sim: SimServer, cluster: str, path: str) -> dict[str, Any]:
    """The object at `path` in an emulated cluster; it must exist."""
    obj = sim_client(sim, cluster).get(path)
    assert obj is not None, path
    return obj


def weights(sim: SimServer, cluster: str) -> dict[str, int]:
    """The stable/canary split of the api's `primary` route in one cluster."""
    primary = next(r for r in live(sim, cluster, VS)["spec"]["http"] if r["name"] == "primary")
    return {d["destination"]["subset"]: d["weight"] for d in primary["route"]}


def sim_client(sim: SimServer, cluster: str, *, retry: RetryPolicy | None = None) -> KubeClient:
    config = kubernetes.client.Configuration()
    config.host = sim.endpoint(cluster)
    config.ssl_ca_cert = str(sim.ca_path)
    config.api_key = {"BearerToken": sim.token}
    config.api_key_prefix = {"BearerToken": "Bearer"}
    return KubeClient(kubernetes.client.ApiClient(config), cluster=cluster, retry=retry or RetryPolicy())


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimServer]:
    with SimServer(clusters=("aws", "azure", "gcp"), state_dir=tmp_path / "sim", ready_delay=0.1) as server:
        yield server


def estate_with_strategy(root: Path, strategy: str) -> Path:
    """A copy of the reference estate whose services use `strategy` (YAML text starting `strategy:`)."""
    copy_estate(root)
    for service in ("api", "frontend"):
        path = root / "pipelines" / f"{service}.yaml"
        path.write_text(re.sub(r"strategy:\n(?:(?:  |    ).*\n)+", strategy, path.read_text()))
    return root


@pytest.fixture
def estate(tmp_path: Path) -> Project:
    return Project(estate_with_strategy(tmp_path / "estate", FAST_CANARY))


@pytest.fixture
def sessions(tmp_path: Path) -> sessionmaker[Session]:
    return open_store(f"sqlite:///{tmp_path / 'state.db'}")


def sim_engine(project: Project, sessions: sessionmaker[Session], sim: SimServer) -> RolloutEngine:
    """An engine on the in-process emulator; its gates read the emulated mesh's /metrics directly."""

    def connect(cluster: ClusterConfig) -> KubeClient:
        return sim_client(sim, cluster.name)

    def gates(pipeline: Pipeline, environment: Environment) -> AnalysisGate:
        return AnalysisGateRunner(pipeline, environment, metrics_urls=lambda c: (sim.metrics_endpoint(c),))

    desired = GitDesiredState(project.root / ".orchestrator", project.root)
    return RolloutEngine(project, sessions, desired=desired, connect=connect, gates=gates, poll_interval=0.05)


@pytest.fixture
def engine(estate: Project, sessions: sessionmaker[Session], sim: SimServer) -> RolloutEngine:
    return sim_engine(estate, sessions, sim)
