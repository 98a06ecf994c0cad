"""`aks` targets against a fake Entra ID + Resource Manager (HTTPS) and the emulator as the cluster.

azure-identity's DefaultAzureCredential (environment credentials: a service principal) gets its tokens
from the fake Entra ID; azure-mgmt-containerservice asks the fake Resource Manager for the cluster user
kubeconfig; the emulator accepts only the credential that kubeconfig implies: its static token, or an
Entra token issued for the AKS server application.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest
import trustme
import yaml

from orchestrator.clusters import AksTarget, ClusterConnectionError, connect
from orchestrator.errors import ConfigError
from orchestrator.sim.server import SimServer
from tests.fakes.azure import AKS_SERVER_APP_ID, FakeAzure
from tests.fakes.environment import isolate_cloud_environment, trust_ca

SUBSCRIPTION = "0b1f6471-1bf0-4dda-aec3-111122223333"
RESOURCE_GROUP = "rg-prod"
STATIC_TOKEN = "aks-local-account-token"
AKS_SCOPE = f"{AKS_SERVER_APP_ID}/.default"


@pytest.fixture
def azure(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeAzure]:
    isolate_cloud_environment(monkeypatch, tmp_path / "home")
    with FakeAzure() as fake:
        client_id, secret = fake.add_app()
        monkeypatch.setenv("AZURE_AUTHORITY_HOST", fake.url)
        monkeypatch.setenv("AZURE_TENANT_ID", fake.tenant_id)
        monkeypatch.setenv("AZURE_CLIENT_ID", client_id)
        monkeypatch.setenv("AZURE_CLIENT_SECRET", secret)
        monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", SUBSCRIPTION)
        trust_ca(monkeypatch, fake.ca_path)
        yield fake


@pytest.fixture
def sim(azure: FakeAzure, tmp_path: Path) -> Iterator[SimServer]:
    def authenticator(cluster: str, token: str) -> bool:
        return token == STATIC_TOKEN or azure.token_is_valid(token, AKS_SCOPE)

    with SimServer(clusters=("azure",), state_dir=tmp_path / "sim", authenticator=authenticator) as server:
        yield server


def _kubeconfig(sim: SimServer, user: dict[str, Any]) -> bytes:
    """A clusterUser kubeconfig as AKS returns it, for the emulated cluster."""
    ca = base64.b64encode(sim.ca_path.read_bytes()).decode()
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "prod",
                    "cluster": {"server": sim.endpoint("azure"), "certificate-authority-data": ca},
                }
            ],
            "contexts": [
                {"name": "prod", "context": {"cluster": "prod", "user": "clusterUser_rg-prod_prod"}}
            ],
            "current-context": "prod",
            "users": [{"name": "clusterUser_rg-prod_prod", "user": user}],
        }
    ).encode()


@pytest.fixture
def local_accounts_cluster(azure: FakeAzure, sim: SimServer) -> AksTarget:
    azure.add_managed_cluster(SUBSCRIPTION, RESOURCE_GROUP, "prod", _kubeconfig(sim, {"token": STATIC_TOKEN}))
    return AksTarget(cluster="prod", resource_group=RESOURCE_GROUP, base_url=azure.url)


@pytest.fixture
def entra_cluster(azure: FakeAzure, sim: SimServer) -> AksTarget:
    kubelogin = {
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "command": "kubelogin",
        "args": [
            "get-token",
            "--login",
            "devicecode",
            "--server-id",
            AKS_SERVER_APP_ID,
            "--tenant-id",
            azure.tenant_id,
        ],
    }
    azure.add_managed_cluster(SUBSCRIPTION, RESOURCE_GROUP, "prod-aad", _kubeconfig(sim, {"exec": kubelogin}))
    return AksTarget(cluster="prod-aad", resource_group=RESOURCE_GROUP, base_url=azure.url)


def test_a_local_accounts_cluster_is_reached_with_the_kubeconfig_token(
    local_accounts_cluster: AksTarget, azure: FakeAzure, sim: SimServer
) -> None:
    api = connect(local_accounts_cluster, name="prod-azure")

    assert api.configuration.host == sim.endpoint("azure")
    assert "default" in [
        ns.metadata.name for ns in kubernetes.client.CoreV1Api(api).list_namespace().items if ns.metadata
    ]
    arm_calls = [r for r in azure.requests if r.path.endswith("/listClusterUserCredential")]
    assert len(arm_calls) == 1
    assert arm_calls[0].path == (
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/"
        "Microsoft.ContainerService/managedClusters/prod/listClusterUserCredential"
    )
    assert arm_calls[0].method == "POST" and arm_calls[0].param("api-version")


def test_an_entra_id_cluster_gets_a_token_for_the_aks_server_app_instead_of_kubelogin(
    entra_cluster: AksTarget, azure: FakeAzure, sim: SimServer
) -> None:
    api = connect(entra_cluster, name="prod-azure")
    kubernetes.client.CoreV1Api(api).list_namespace()

    token = api.configuration.api_key["BearerToken"].removeprefix("Bearer ")
    assert azure.issued[token].scope == AKS_SCOPE
    assert {issued.scope for issued in azure.issued.values()} == {azure.arm_scope, AKS_SCOPE}


def test_an_entra_token_is_renewed_when_it_expires(entra_cluster: AksTarget, azure: FakeAzure) -> None:
    azure.token_lifetime = 1  # every token is already inside the renewal margin
    api = connect(entra_cluster, name="prod-azure")
    core = kubernetes.client.CoreV1Api(api)

    core.list_namespace()
    first = api.configuration.api_key["BearerToken"]
    core.list_namespace()

    assert api.configuration.api_key["BearerToken"] != first
    assert sum(1 for t in azure.issued.values() if t.scope == AKS_SCOPE) >= 3  # probe + two lists


def test_a_wrong_client_secret_is_reported_with_entra_ids_reason(
    local_accounts_cluster: AksTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "not-the-secret")

    with pytest.raises(ClusterConnectionError) as caught:
        connect(local_accounts_cluster, name="prod-azure")

    assert str(caught.value) == (
        "cluster 'prod-azure' (AKS cluster prod in resource group rg-prod): could not get an Azure token: "
        "EnvironmentCredential: Authentication failed: AADSTS7000215: Invalid client secret provided."
    )


def test_an_unknown_aks_cluster_is_named(local_accounts_cluster: AksTarget) -> None:
    with pytest.raises(ClusterConnectionError) as caught:
        connect(local_accounts_cluster.model_copy(update={"cluster": "ghost"}), name="prod-azure")

    assert str(caught.value) == (
        "cluster 'prod-azure' (AKS cluster ghost in resource group rg-prod): Azure Resource Manager: the AKS "
        "cluster was not found (ResourceNotFound: The Resource "
        "'Microsoft.ContainerService/managedClusters/ghost' under resource group 'rg-prod' was not found.)"
    )


def test_a_kubeconfig_token_the_cluster_refuses_is_reported(azure: FakeAzure, sim: SimServer) -> None:
    azure.add_managed_cluster(
        SUBSCRIPTION, RESOURCE_GROUP, "stale", _kubeconfig(sim, {"token": "rotated-away"})
    )

    with pytest.raises(ClusterConnectionError) as caught:
        connect(
            AksTarget(cluster="stale", resource_group=RESOURCE_GROUP, base_url=azure.url), name="prod-azure"
        )

    assert "rejected our credentials (401 Unauthorized)" in str(caught.value)
    assert "Azure Kubernetes Service Cluster User" in str(caught.value)


def test_an_unreachable_resource_manager_is_reported(local_accounts_cluster: AksTarget) -> None:
    with pytest.raises(ClusterConnectionError) as caught:
        connect(
            local_accounts_cluster.model_copy(update={"base_url": "https://127.0.0.1:9"}), name="prod-azure"
        )

    assert str(caught.value) == (
        "cluster 'prod-azure' (AKS cluster prod in resource group rg-prod): "
        "cannot reach Azure Resource Manager at https://127.0.0.1:9: connection refused"
    )


def test_a_resource_manager_with_an_untrusted_certificate_is_refused(
    local_accounts_cluster: AksTarget, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    stranger = tmp_path / "stranger-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(stranger))
    trust_ca(monkeypatch, stranger)

    with pytest.raises(ClusterConnectionError) as caught:
        connect(local_accounts_cluster, name="prod-azure")

    assert str(caught.value).startswith("cluster 'prod-azure' (AKS cluster prod in resource group rg-prod): ")
    assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value)


def test_a_missing_subscription_is_a_configuration_error(
    local_accounts_cluster: AksTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AZURE_SUBSCRIPTION_ID")

    with pytest.raises(ConfigError) as caught:
        connect(local_accounts_cluster, name="prod-azure")

    assert "no Azure subscription: set target.subscriptionId or AZURE_SUBSCRIPTION_ID" in str(caught.value)
    assert caught.value.key == "target.subscriptionId"


def test_an_explicit_subscription_wins_over_the_environment(
    local_accounts_cluster: AksTarget, azure: FakeAzure, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", "00000000-0000-0000-0000-000000000000")

    connect(local_accounts_cluster.model_copy(update={"subscription_id": SUBSCRIPTION}), name="prod-azure")

    assert azure.requests[-1].path.startswith(f"/subscriptions/{SUBSCRIPTION}/")
