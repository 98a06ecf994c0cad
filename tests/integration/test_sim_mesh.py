"""Simulated mesh traffic and its Istio metrics: requests follow the VirtualService weights over the
DestinationRule subsets, error rates and latencies follow the pod-template annotations, and a real
Prometheus scraping the metrics endpoint computes the figures a canary gate would."""

from __future__ import annotations

import math
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import kubernetes.client
import pytest
from kubernetes.dynamic import DynamicClient
from prometheus_client.parser import text_string_to_metric_families

from orchestrator.sim.clock import ManualClock
from orchestrator.sim.server import SimCluster, SimServer


def client(sim: SimServer) -> kubernetes.client.ApiClient:
    cfg = kubernetes.client.Configuration()
    cfg.host = sim.endpoint("aws")
    cfg.ssl_ca_cert = str(sim.ca_path)
    cfg.api_key = {"authorization": f"Bearer {sim.token}"}
    return kubernetes.client.ApiClient(cfg)


def workload(name: str, version: str, replicas: int = 2, **annotations: str) -> dict[str, Any]:
    labels = {"app": "api", "version": version}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels, "annotations": annotations},
                "spec": {"containers": [{"name": "app", "image": "api:1"}]},
            },
        },
    }


def istio_objects(stable: int, canary: int) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "api", "namespace": "shop"},
            "spec": {"selector": {"app": "api"}, "ports": [{"port": 80}]},
        },
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "DestinationRule",
            "metadata": {"name": "api", "namespace": "shop"},
            "spec": {
                "host": "api",
                "subsets": [
                    {"name": "stable", "labels": {"version": "v1"}},
                    {"name": "canary", "labels": {"version": "v2"}},
                ],
            },
        },
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": {"name": "api", "namespace": "shop"},
            "spec": {
                "hosts": ["api"],
                "http": [
                    {
                        "name": "by-header",
                        "match": [{"headers": {"x-canary": {"exact": "1"}}}],
                        "route": [{"destination": {"host": "api", "subset": "canary"}}],
                    },
                    {
                        "name": "primary",
                        "route": [
                            {
                                "destination": {"host": "api.shop.svc.cluster.local", "subset": "stable"},
                                "weight": stable,
                            },
                            {"destination": {"host": "api", "subset": "canary"}, "weight": canary},
                        ],
                    },
                ],
            },
        },
    ]


def install(
    api: kubernetes.client.ApiClient, weights: tuple[int, int], canary_annotations: dict[str, str]
) -> None:
    kubernetes.client.CoreV1Api(api).create_namespace({"metadata": {"name": "shop"}})
    dyn = DynamicClient(api)
    objects = [
        workload("api-stable", "v1"),
        workload("api-canary", "v2", **canary_annotations),
        *istio_objects(*weights),
    ]
    for obj in objects:
        dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"]).server_side_apply(
            body=obj, field_manager="test"
        )


def set_weights(api: kubernetes.client.ApiClient, stable: int, canary: int) -> None:
    vs = istio_objects(stable, canary)[2]
    DynamicClient(api).resources.get(api_version=vs["apiVersion"], kind="VirtualService").server_side_apply(
        body=vs, field_manager="test"
    )


def scrape(sim: SimServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the plain-HTTP metrics endpoint, keyed by name and the labels that matter here."""
    text = httpx.get(sim.metrics_endpoint("aws"), timeout=5).text
    keep = ("destination_workload", "destination_version", "response_code", "le")
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name, tuple((k, sample.labels[k]) for k in keep if k in sample.labels))
            out[key] = out.get(key, 0.0) + sample.value
    return out


def requests(samples: dict[Any, float], workload: str, version: str, code: str) -> float:
    return samples.get(
        (
            "istio_requests_total",
            (("destination_workload", workload), ("destination_version", version), ("response_code", code)),
        ),
        0.0,
    )


@pytest.fixture
def manual(tmp_path: Path) -> Iterator[SimServer]:
    with SimServer(
        clusters=("aws",),
        state_dir=tmp_path,
        clock=ManualClock(),
        run_controllers=False,
        requests_per_second=50.0,
    ) as server:
        yield server


def settle(cluster: SimCluster) -> None:
    assert isinstance(cluster.clock, ManualClock)
    for _ in range(10):
        cluster.clock.advance(0.1)
        cluster.controller.reconcile()


def elapse(cluster: SimCluster, seconds: float) -> None:
    assert isinstance(cluster.clock, ManualClock)
    cluster.mesh.advance()
    cluster.clock.advance(seconds)
    cluster.mesh.advance()


def test_requests_follow_the_route_weights_and_each_versions_error_rate_and_latency(
    manual: SimServer,
) -> None:
    cluster = manual.cluster("aws")
    with client(manual) as api:
        install(api, (80, 20), {"sim.addtocloud.io/error-rate": "0.5", "sim.addtocloud.io/latency-ms": "200"})
    settle(cluster)
    elapse(cluster, 10.0)  # 50 requests/s for 10 s → 400 stable, 100 canary (half of them failing)

    samples = scrape(manual)
    assert requests(samples, "api-stable", "v1", "200") == 400
    assert requests(samples, "api-stable", "v1", "500") == 0
    assert requests(samples, "api-canary", "v2", "200") == 50
    assert requests(samples, "api-canary", "v2", "500") == 50

    def bucket(workload: str, version: str, code: str, le: str) -> float:
        return samples[
            (
                "istio_request_duration_milliseconds_bucket",
                (
                    ("destination_workload", workload),
                    ("destination_version", version),
                    ("response_code", code),
                    ("le", le),
                ),
            )
        ]

    # Stable answers around 10 ms, the canary around 200 ms.
    assert bucket("api-stable", "v1", "200", "25") >= 0.95 * 400
    assert bucket("api-canary", "v2", "200", "100") <= 0.05 * 50
    assert bucket("api-canary", "v2", "200", "+Inf") == 50
    count = samples[
        (
            "istio_request_duration_milliseconds_count",
            (("destination_workload", "api-canary"), ("destination_version", "v2"), ("response_code", "200")),
        )
    ]
    assert count == 50


def test_shifting_the_weights_moves_new_traffic(manual: SimServer) -> None:
    cluster = manual.cluster("aws")
    with client(manual) as api:
        install(api, (100, 0), {})
        settle(cluster)
        elapse(cluster, 4.0)
        set_weights(api, 0, 100)
        elapse(cluster, 6.0)
    samples = scrape(manual)
    assert requests(samples, "api-stable", "v1", "200") == 200
    assert requests(samples, "api-canary", "v2", "200") == 300


def test_a_subset_without_ready_pods_answers_503(manual: SimServer) -> None:
    cluster = manual.cluster("aws")
    with client(manual) as api:
        install(api, (50, 50), {"sim.addtocloud.io/failure": "never-ready"})
    settle(cluster)
    elapse(cluster, 2.0)
    samples = scrape(manual)
    assert requests(samples, "api-stable", "v1", "200") == 50
    assert requests(samples, "api-canary", "v2", "503") == 50


def test_a_service_without_a_virtual_service_splits_by_ready_pods(manual: SimServer) -> None:
    cluster = manual.cluster("aws")
    with client(manual) as api:
        kubernetes.client.CoreV1Api(api).create_namespace({"metadata": {"name": "shop"}})
        dyn = DynamicClient(api)
        for obj in (
            workload("api-stable", "v1", replicas=3),
            workload("api-canary", "v2", replicas=1),
            istio_objects(100, 0)[0],
        ):
            dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"]).server_side_apply(
                body=obj, field_manager="test"
            )
    settle(cluster)
    elapse(cluster, 4.0)
    samples = scrape(manual)
    assert requests(samples, "api-stable", "v1", "200") == 150
    assert requests(samples, "api-canary", "v2", "200") == 50


def test_metrics_are_served_without_auth_on_the_api_endpoint_too(manual: SimServer) -> None:
    resp = httpx.get(manual.endpoint("aws") + "/metrics", verify=False, timeout=5)
    assert resp.status_code == 200
    assert "# TYPE istio_requests_total counter" in resp.text


# -- with a real Prometheus ------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A real Prometheus on loopback; the test writes its scrape targets into the returned file."""
    targets = tmp_path / "targets.yml"
    targets.write_text("[]\n")
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        "- job_name: sim\n"
        "  file_sd_configs: [{files: ['" + str(targets) + "'], refresh_interval: 1s}]\n"
    )
    port = free_port()
    proc = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield targets, f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_a_real_prometheus_computes_the_canary_error_rate(
    tmp_path: Path, prometheus: tuple[Path, str]
) -> None:
    targets, url = prometheus
    with SimServer(clusters=("aws",), state_dir=tmp_path / "sim", ready_delay=0.1) as sim:
        metrics = httpx.URL(sim.metrics_endpoint("aws"))
        targets.write_text(f"- targets: ['{metrics.host}:{metrics.port}']\n")
        with client(sim) as api:
            install(api, (50, 50), {"sim.addtocloud.io/error-rate": "0.3"})
        query = (
            'sum(rate(istio_requests_total{reporter="destination",destination_version="v2",response_code=~"5.."}[5s]))'
            ' / sum(rate(istio_requests_total{reporter="destination",destination_version="v2"}[5s]))'
        )
        deadline = time.monotonic() + 60
        value = math.nan
        while time.monotonic() < deadline:
            response = httpx.get(f"{url}/api/v1/query", params={"query": query}, timeout=5)
            if response.status_code != 200:  # Prometheus answers 503 until its storage is ready
                time.sleep(0.5)
                continue
            result = response.json()["data"]["result"]
            if result and not math.isnan(float(result[0]["value"][1])):
                value = float(result[0]["value"][1])
                break
            time.sleep(0.5)
    assert value == pytest.approx(0.3, abs=0.05)


def test_routes_to_hosts_outside_the_cluster_produce_no_metrics(manual: SimServer) -> None:
    cluster = manual.cluster("aws")
    crosscloud = {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": {"name": "api-crosscloud", "namespace": "shop"},
        "spec": {
            "hosts": ["api.example.com"],
            "gateways": ["public"],
            "http": [
                {
                    "name": "crosscloud",
                    "route": [
                        {"destination": {"host": "api.aws"}, "weight": 60},
                        {"destination": {"host": "api.azure"}, "weight": 40},
                    ],
                }
            ],
        },
    }
    with client(manual) as api:
        install(api, (100, 0), {"sim.addtocloud.io/latency-ms": "0"})
        DynamicClient(api).resources.get(
            api_version="networking.istio.io/v1beta1", kind="VirtualService"
        ).create(body=crosscloud, namespace="shop")
    settle(cluster)
    elapse(cluster, 2.0)
    samples = scrape(manual)
    codes = {dict(labels).get("response_code") for name, labels in samples if name == "istio_requests_total"}
    assert codes == {"200"}
    assert requests(samples, "api-stable", "v1", "200") == 100
    # latency-ms 0 is a healthy 10 ms median, not zero.
    within_5ms = samples[
        (
            "istio_request_duration_milliseconds_bucket",
            (
                ("destination_workload", "api-stable"),
                ("destination_version", "v1"),
                ("response_code", "200"),
                ("le", "5"),
            ),
        )
    ]
    within_25ms = samples[
        (
            "istio_request_duration_milliseconds_bucket",
            (
                ("destination_workload", "api-stable"),
                ("destination_version", "v1"),
                ("response_code", "200"),
                ("le", "25"),
            ),
        )
    ]
    assert within_5ms < 10 and within_25ms >= 95
