"""What drift answers for a cluster before any field is compared: rolling out, not committed, unknown."""

from __future__ import annotations

import time

from orchestrator.config import ClusterConfig
from orchestrator.errors import OrchestratorError
from orchestrator.kube.client import KubeClient
from orchestrator.rollout.drift import CommittedState, DriftState, check_clusters, explain, overall
from orchestrator.store.models import Deployment
from tests.unit.test_drift_fields import deployment

CLUSTERS = [
    ClusterConfig(
        name=name, cloud="aws", region="us-west-2", weight=w, target={"type": "sim", "cluster": name}
    )
    for name, w in (("aws", 60), ("azure", 40))
]


def refuse(cluster: ClusterConfig) -> KubeClient:
    raise AssertionError(f"{cluster.name} should not have been read")


def test_a_rollout_in_progress_reads_no_cluster_and_is_rolling_out() -> None:
    committed = CommittedState("c" * 40, {"aws": [deployment()], "azure": [deployment()]}, {})
    active = Deployment(service="api", environment="local", phase="Paused")
    answers = check_clusters(CLUSTERS, committed, active, connect=refuse, timeout=1.0)
    assert {c.state for c in answers.values()} == {DriftState.ROLLING_OUT}
    assert overall(list(answers.values())) is DriftState.ROLLING_OUT


def test_nothing_committed_is_not_drift_and_an_unreadable_file_is_unknown() -> None:
    committed = CommittedState("c" * 40, {}, {"azure": "local/azure/api.yaml: not valid YAML: ..."})
    answers = check_clusters(CLUSTERS, committed, None, connect=refuse, timeout=1.0)
    assert answers["aws"].state is DriftState.NOT_COMMITTED
    assert answers["azure"].state is DriftState.UNKNOWN and "not valid YAML" in (answers["azure"].error or "")
    assert overall([answers["aws"]]) is DriftState.NOT_COMMITTED


def test_an_unreachable_or_silent_cluster_is_unknown_named_and_costs_the_deadline_once() -> None:
    committed = CommittedState("c" * 40, {"aws": [deployment()], "azure": [deployment()]}, {})

    def connect(cluster: ClusterConfig) -> KubeClient:
        if cluster.name == "aws":
            raise OrchestratorError("cluster aws: connection refused")
        time.sleep(5)
        raise AssertionError("unreachable")

    started = time.monotonic()
    answers = check_clusters(CLUSTERS, committed, None, connect=connect, timeout=0.3)
    assert time.monotonic() - started < 2
    assert (answers["aws"].state, answers["aws"].error) == (
        DriftState.UNKNOWN,
        "cluster aws: connection refused",
    )
    assert answers["azure"].error == "cluster azure did not answer within 0.3s"
    assert answers["azure"].label() == "unknown"


def test_a_commit_whose_deployment_rolled_back_is_explained() -> None:
    rolled_back = Deployment(service="api", environment="local", phase="RolledBack", gitops_commit="c" * 40)
    assert "ended RolledBack" in (explain(rolled_back) or "")
    never_committed = Deployment(service="api", environment="local", phase="Failed", gitops_commit=None)
    assert explain(never_committed) is None
    assert (
        explain(Deployment(service="api", environment="local", phase="Succeeded", gitops_commit="c" * 40))
        is None
    )


def test_a_report_read_back_from_its_json_is_the_same_report() -> None:
    """`drift --server` rebuilds the reports from the API's JSON and prints them with the local printer."""
    from orchestrator.kube.drift import ABSENT, FieldDrift, ObjectDrift
    from orchestrator.rollout.drift import ClusterDrift, ServiceDrift

    objects = [
        ObjectDrift(
            "Deployment/api", fields=[FieldDrift("spec.replicas", 2, 5), FieldDrift("x", ABSENT, {})]
        ),
        ObjectDrift("Service/api", missing=True),
    ]
    report = ServiceDrift(
        "api",
        "local",
        "c" * 40,
        DriftState.DRIFTED,
        [
            ClusterDrift("aws", DriftState.DRIFTED, objects, checked=4),
            ClusterDrift("azure", DriftState.UNKNOWN, error="unreachable"),
        ],
        note="a note",
    )
    assert ServiceDrift.from_json(report.to_json()) == report
