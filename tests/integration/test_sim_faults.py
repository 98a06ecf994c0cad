"""Fault injection and the request log, in process and over the `/_sim/` control API."""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import kubernetes.client
import pytest
from kubernetes.client.rest import ApiException

from orchestrator.sim.client import SimControl
from orchestrator.sim.server import SimServer


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimServer]:
    with SimServer(clusters=("aws", "azure"), state_dir=tmp_path, run_controllers=False) as server:
        yield server


def http(sim: SimServer, cluster: str = "aws", token: str | None = None) -> httpx.Client:
    return httpx.Client(
        base_url=sim.endpoint(cluster),
        verify=ssl.create_default_context(cafile=str(sim.ca_path)),
        headers={"Authorization": f"Bearer {token or sim.token}"},
        timeout=5,
    )


def core(sim: SimServer, cluster: str = "aws") -> kubernetes.client.CoreV1Api:
    cfg = kubernetes.client.Configuration()
    cfg.host = sim.endpoint(cluster)
    cfg.ssl_ca_cert = str(sim.ca_path)
    cfg.api_key = {"authorization": f"Bearer {sim.token}"}
    cfg.retries = 0
    return kubernetes.client.CoreV1Api(kubernetes.client.ApiClient(cfg))


def test_injected_5xx_is_a_status_body_and_is_logged(sim: SimServer) -> None:
    sim.cluster("aws").faults.set(error_rate=1.0)
    with pytest.raises(ApiException) as caught:
        core(sim).list_namespace()
    assert caught.value.status == 503
    assert '"reason":"ServiceUnavailable"' in caught.value.body
    (entry,) = sim.cluster("aws").request_log.entries()
    assert (entry.method, entry.path, entry.status, entry.fault) == (
        "GET",
        "/api/v1/namespaces",
        503,
        "error",
    )


def test_injected_429_carries_retry_after(sim: SimServer) -> None:
    sim.cluster("aws").faults.set(throttle_rate=1.0, retry_after_seconds=2)
    with http(sim) as client:
        resp = client.get("/api/v1/namespaces")
    assert resp.status_code == 429
    assert resp.headers["Retry-After"] == "2"
    assert resp.json()["details"]["retryAfterSeconds"] == 2


def test_a_dropped_connection_gets_no_response(sim: SimServer) -> None:
    sim.cluster("aws").faults.set(drop_rate=1.0)
    with http(sim) as client, pytest.raises(httpx.TransportError):
        client.get("/api/v1/namespaces")


def test_added_latency_delays_answers(sim: SimServer) -> None:
    sim.cluster("aws").faults.set(latency_ms=300)
    with http(sim) as client:
        started = time.monotonic()
        assert client.get("/api/v1/namespaces").status_code == 200
    assert time.monotonic() - started >= 0.3


def test_faults_can_target_writes_only(sim: SimServer) -> None:
    sim.cluster("aws").faults.set(error_rate=1.0, methods=["POST", "PATCH"])
    api = core(sim)
    api.list_namespace()
    with pytest.raises(ApiException) as caught:
        api.create_namespace({"metadata": {"name": "blocked"}})
    assert caught.value.status == 503


def test_a_rate_is_a_share_of_requests_reproducible_by_seed(sim: SimServer) -> None:
    sim.cluster("aws").faults.set(error_rate=0.2, throttle_rate=0.2)
    with http(sim) as client:
        codes = [client.get("/api/v1/namespaces").status_code for _ in range(300)]
    assert 40 <= codes.count(503) <= 80
    assert 40 <= codes.count(429) <= 80
    assert codes.count(200) == 300 - codes.count(503) - codes.count(429)


def test_a_cluster_that_is_down_refuses_connections_until_it_is_up_again(sim: SimServer) -> None:
    endpoint = sim.endpoint("aws")
    sim.cluster("aws").set_down()
    with http(sim) as client, pytest.raises(httpx.ConnectError):
        client.get("/version")
    assert sim.endpoint("azure") != endpoint
    with http(sim, "azure") as other:
        assert other.get("/api/v1/namespaces").status_code == 200
    sim.cluster("aws").set_down(False)
    assert sim.endpoint("aws") == endpoint
    with http(sim) as client:
        assert client.get("/api/v1/namespaces").status_code == 200


def test_the_request_log_counts_writes(sim: SimServer) -> None:
    api = core(sim)
    api.create_namespaced_config_map("default", {"metadata": {"name": "a"}})
    api.read_namespaced_config_map("a", "default")
    api.patch_namespaced_config_map("a", "default", {"data": {"k": "v"}})
    api.list_namespaced_config_map("default", label_selector="x=y")
    api.delete_namespaced_config_map("a", "default")
    log = sim.cluster("aws").request_log
    assert [(e.method, e.status) for e in log.writes()] == [("POST", 201), ("PATCH", 200), ("DELETE", 200)]
    assert [e.query for e in log.reads()] == ["", "labelSelector=x%3Dy"]
    assert sim.cluster("azure").request_log.entries() == []
    api.create_namespaced_config_map("default", {"metadata": {"name": "b"}}, dry_run="All")
    assert log.entries()[-1].verb == "dry-run"
    assert len(log.writes()) == 3
    log.reset()
    assert log.entries() == []


def test_the_control_api_drives_faults_and_the_log_and_needs_the_token(sim: SimServer) -> None:
    with http(sim, token="wrong") as stranger:
        assert stranger.get("/_sim/clusters").status_code == 401

    with SimControl(sim.endpoint("azure"), sim.token, sim.ca_path) as control:
        assert control.set_faults("aws", throttle_rate=1.0)["throttle_rate"] == 1.0
        with http(sim) as client:
            assert client.get("/api/v1/namespaces").status_code == 429
        control.clear_faults("aws")
        with http(sim) as client:
            client.post("/api/v1/namespaces", json={"metadata": {"name": "x"}})
        assert [(r["method"], r["status"], r["verb"]) for r in control.requests("aws", verb="write")] == [
            ("POST", 201, "write")
        ]
        control.reset_requests("aws")
        assert control.requests("aws") == []

        control.set_faults("aws", down=True)
        with http(sim) as client, pytest.raises(httpx.ConnectError):
            client.get("/version")
        control.clear_faults("aws")  # through azure: aws itself is down
        with http(sim) as client:
            assert client.get("/version").status_code == 200

    with http(sim) as client:
        bad = client.patch("/_sim/clusters/aws/faults", json={"eror_rate": 0.5})
        assert bad.status_code == 400
        assert "eror_rate" in bad.json()["message"]
        unknown = client.get("/_sim/clusters/mars/faults")
        assert unknown.status_code == 404
        assert "known: aws, azure" in unknown.json()["message"]


def test_the_control_endpoint_stays_up_when_every_cluster_is_down(sim: SimServer) -> None:
    for name in ("aws", "azure"):
        sim.cluster(name).set_down()
    with SimControl(sim.control_endpoint, sim.token, sim.ca_path) as control:
        assert control.faults("aws")["down"] is True
        control.clear_faults("aws")
    with http(sim) as client:
        assert client.get("/version").status_code == 200
    with httpx.Client(
        base_url=sim.control_endpoint,
        verify=ssl.create_default_context(cafile=str(sim.ca_path)),
        headers={"Authorization": f"Bearer {sim.token}"},
    ) as client:
        assert client.get("/api/v1/namespaces").status_code == 404
