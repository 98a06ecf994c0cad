"""`kubeconfig` targets: any context of a kubeconfig file, here the emulator's own kubeconfig."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import kubernetes.client
import pytest
import trustme
import yaml

from orchestrator.clusters import ClusterConnectionError, KubeconfigTarget, connect
from orchestrator.errors import ConfigError
from orchestrator.sim.server import SimServer
from tests.fakes.environment import isolate_cloud_environment


@pytest.fixture
def sim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SimServer]:
    isolate_cloud_environment(monkeypatch, tmp_path / "home")
    with SimServer(clusters=("aws", "azure"), state_dir=tmp_path / "sim") as server:
        yield server


def _edited_kubeconfig(sim: SimServer, tmp_path: Path, edit: dict[str, object]) -> Path:
    config = yaml.safe_load(sim.kubeconfig_path.read_text())
    for key, value in edit.items():
        if key == "token":
            config["users"][0]["user"]["token"] = value
        elif key == "ca":
            for cluster in config["clusters"]:
                cluster["cluster"]["certificate-authority-data"] = value
    path = tmp_path / "edited-kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


def test_a_named_context_reaches_that_cluster_with_its_token(sim: SimServer) -> None:
    target = KubeconfigTarget(path=str(sim.kubeconfig_path), context="sim-azure")

    api = connect(target, name="dev-azure")

    assert api.configuration.host == sim.endpoint("azure")
    names = [
        ns.metadata.name for ns in kubernetes.client.CoreV1Api(api).list_namespace().items if ns.metadata
    ]
    assert "default" in names
    # the probe and the list reached the azure cluster, authenticated; the aws cluster saw nothing
    assert [e.status for e in sim.cluster("azure").request_log.entries()] == [200, 200]
    assert sim.cluster("aws").request_log.entries() == []


def test_without_path_or_context_kubeconfig_env_and_current_context_are_used(
    sim: SimServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", f"{sim.kubeconfig_path.parent / 'missing'}:{sim.kubeconfig_path}")

    api = connect(KubeconfigTarget(), name="local")

    assert api.configuration.host == sim.endpoint("aws")  # the sim kubeconfig's current context: sim-aws
    kubernetes.client.CoreV1Api(api).list_namespace()


def test_an_unknown_context_is_a_configuration_error_listing_the_known_ones(sim: SimServer) -> None:
    target = KubeconfigTarget(path=str(sim.kubeconfig_path), context="sim-gcp")

    with pytest.raises(ConfigError) as caught:
        connect(target, name="dev-gcp")

    message = str(caught.value)
    assert "'dev-gcp'" in message and "unknown context 'sim-gcp'" in message
    assert "known contexts: sim-aws, sim-azure" in message
    assert caught.value.exit_code == 2


def test_a_missing_kubeconfig_file_is_a_configuration_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "config"

    with pytest.raises(ConfigError, match=f"kubeconfig {missing} does not exist"):
        connect(KubeconfigTarget(path=str(missing)), name="dev")


def test_a_wrong_token_is_refused_naming_the_cluster(sim: SimServer, tmp_path: Path) -> None:
    path = _edited_kubeconfig(sim, tmp_path, {"token": "not-the-sim-token"})

    with pytest.raises(ClusterConnectionError) as caught:
        connect(KubeconfigTarget(path=str(path), context="sim-aws"), name="dev-aws")

    assert caught.value.cluster == "dev-aws"
    assert str(caught.value) == (
        "cluster 'dev-aws' (kubeconfig context sim-aws): "
        f"the API server at {sim.endpoint('aws')} rejected our credentials (401 Unauthorized)"
    )
    assert caught.value.exit_code == 1


def test_a_cluster_that_is_down_is_reported_unreachable(sim: SimServer) -> None:
    sim.cluster("azure").set_down()

    with pytest.raises(ClusterConnectionError) as caught:
        connect(KubeconfigTarget(path=str(sim.kubeconfig_path), context="sim-azure"), name="dev-azure")

    assert str(caught.value) == (
        "cluster 'dev-azure' (kubeconfig context sim-azure): "
        f"cannot reach the API server at {sim.endpoint('azure')}: connection refused"
    )


def test_a_server_certificate_from_another_ca_is_not_trusted(sim: SimServer, tmp_path: Path) -> None:
    import base64

    stranger = base64.b64encode(trustme.CA().cert_pem.bytes()).decode()
    path = _edited_kubeconfig(sim, tmp_path, {"ca": stranger})

    with pytest.raises(ClusterConnectionError, match="TLS verification failed") as caught:
        connect(KubeconfigTarget(path=str(path), context="sim-aws"), name="dev-aws")

    assert "\n" not in str(caught.value)
