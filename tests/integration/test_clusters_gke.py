"""`gke` targets against a fake Google OAuth + GKE API (HTTPS) and the emulator as the cluster.

google-auth reads a service-account key from GOOGLE_APPLICATION_CREDENTIALS and exchanges a signed JWT
for an access token at the fake's token endpoint; google-cloud-container (REST transport) reads the
cluster; the emulator accepts only access tokens the fake issued.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest
import trustme

from orchestrator.clusters import ClusterConnectionError, GkeTarget, connect
from orchestrator.sim.server import SimServer
from tests.fakes.environment import isolate_cloud_environment, trust_ca
from tests.fakes.gcp import FakeGoogleCloud

PROJECT = "demo-project"
LOCATION = "europe-west1"


@pytest.fixture
def google(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeGoogleCloud]:
    isolate_cloud_environment(monkeypatch, tmp_path / "home")
    with FakeGoogleCloud() as fake:
        trust_ca(monkeypatch, fake.ca_path)
        yield fake


@pytest.fixture
def key_file(google: FakeGoogleCloud, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    path = tmp_path / "deployer-key.json"
    path.write_text(json.dumps(google.service_account_info()))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(path))
    return path


@pytest.fixture
def sim(google: FakeGoogleCloud, tmp_path: Path) -> Iterator[SimServer]:
    def authenticator(cluster: str, token: str) -> bool:
        return google.access_token_is_valid(token)

    with SimServer(clusters=("gcp",), state_dir=tmp_path / "sim", authenticator=authenticator) as server:
        yield server


@pytest.fixture
def target(google: FakeGoogleCloud, sim: SimServer, key_file: Path) -> GkeTarget:
    # GKE reports the endpoint as a bare address and the CA as base64 PEM.
    endpoint = sim.endpoint("gcp").removeprefix("https://")
    google.add_cluster(PROJECT, LOCATION, "prod", endpoint=endpoint, ca_pem=sim.ca_path.read_bytes())
    return GkeTarget(cluster="prod", project=PROJECT, location=LOCATION, api_endpoint=google.url)


def _gke_calls(google: FakeGoogleCloud) -> list[Any]:
    return [r for r in google.requests if r.path.startswith("/v1/")]


def test_connects_with_a_google_access_token_the_cluster_accepts(
    target: GkeTarget, google: FakeGoogleCloud, sim: SimServer
) -> None:
    api = connect(target, name="prod-gcp")

    assert api.configuration.host == sim.endpoint("gcp")
    assert "default" in [
        ns.metadata.name for ns in kubernetes.client.CoreV1Api(api).list_namespace().items if ns.metadata
    ]
    token = api.configuration.api_key["BearerToken"].removeprefix("Bearer ")
    assert google.issued[token].email == "deployer@demo-project.iam.gserviceaccount.com"
    assert [r.path for r in _gke_calls(google)] == [
        f"/v1/projects/{PROJECT}/locations/{LOCATION}/clusters/prod"
    ]


def test_the_access_token_is_renewed_when_it_expires(target: GkeTarget, google: FakeGoogleCloud) -> None:
    google.token_lifetime = 1  # inside google-auth's renewal margin from the start
    api = connect(target, name="prod-gcp")
    core = kubernetes.client.CoreV1Api(api)

    first = api.configuration.api_key["BearerToken"]
    core.list_namespace()

    assert api.configuration.api_key["BearerToken"] != first
    assert len(google.issued) >= 2


def test_a_key_google_does_not_know_is_refused(target: GkeTarget, key_file: Path, tmp_path: Path) -> None:
    with FakeGoogleCloud() as elsewhere:  # same account name and token_uri, a key never registered here
        forged = elsewhere.service_account_info()
    forged["token_uri"] = json.loads(key_file.read_text())["token_uri"]
    key_file.write_text(json.dumps(forged))

    with pytest.raises(ClusterConnectionError) as caught:
        connect(target, name="prod-gcp")

    assert str(caught.value) == (
        "cluster 'prod-gcp' (GKE cluster prod in demo-project/europe-west1): "
        "GKE get_cluster failed: 401 Request had invalid authentication credentials."
    )


def test_no_google_credentials_is_explained(target: GkeTarget, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS")

    with pytest.raises(ClusterConnectionError) as caught:
        connect(target, name="prod-gcp")

    assert "no Google credentials: Your default credentials were not found" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_an_unknown_gke_cluster_is_named(target: GkeTarget) -> None:
    with pytest.raises(ClusterConnectionError) as caught:
        connect(target.model_copy(update={"cluster": "ghost"}), name="prod-gcp")

    assert str(caught.value) == (
        "cluster 'prod-gcp' (GKE cluster ghost in demo-project/europe-west1): the GKE cluster was not found: "
        "Not found: projects/demo-project/locations/europe-west1/clusters/ghost."
    )


def test_an_unreachable_gke_api_is_reported(target: GkeTarget) -> None:
    with pytest.raises(ClusterConnectionError) as caught:
        connect(target.model_copy(update={"api_endpoint": "https://127.0.0.1:9"}), name="prod-gcp")

    assert str(caught.value) == (
        "cluster 'prod-gcp' (GKE cluster prod in demo-project/europe-west1): "
        "cannot reach the GKE API at https://127.0.0.1:9: connection refused"
    )


def test_a_cluster_ca_that_does_not_match_the_server_is_refused(
    target: GkeTarget, google: FakeGoogleCloud, sim: SimServer
) -> None:
    endpoint = sim.endpoint("gcp").removeprefix("https://")
    google.add_cluster(PROJECT, LOCATION, "prod", endpoint=endpoint, ca_pem=trustme.CA().cert_pem.bytes())

    with pytest.raises(ClusterConnectionError, match="TLS verification failed"):
        connect(target, name="prod-gcp")


def test_a_cluster_whose_api_server_is_down_is_reported(target: GkeTarget, sim: SimServer) -> None:
    sim.cluster("gcp").set_down()

    with pytest.raises(
        ClusterConnectionError, match=r"cannot reach the API server at .*: connection refused"
    ):
        connect(target, name="prod-gcp")
