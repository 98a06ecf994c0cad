"""`sim` targets: the emulator running in the background (as `orchestrator sim up` starts it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import kubernetes.client
import pytest

from orchestrator.clusters import ClusterConnectionError, SimTarget, connect
from orchestrator.sim.client import SimControl, SimInfo
from orchestrator.sim.daemon import start_daemon, stop_daemon


@pytest.fixture(scope="module")
def running_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, SimInfo]]:
    state_dir = tmp_path_factory.mktemp("state")
    info, started = start_daemon(state_dir, clusters=("aws", "azure"))
    assert started
    try:
        yield state_dir, info
    finally:
        stop_daemon(state_dir)


def test_a_sim_cluster_is_reached_with_the_running_sims_token(running_sim: tuple[Path, SimInfo]) -> None:
    state_dir, info = running_sim

    api = connect(SimTarget(cluster="azure", state_dir=str(state_dir)), name="local-azure")

    assert api.configuration.host == info.endpoint("azure")
    assert "default" in [
        ns.metadata.name for ns in kubernetes.client.CoreV1Api(api).list_namespace().items if ns.metadata
    ]
    with SimControl.for_sim(info) as control:
        log = control.requests("azure")
    assert [(e["method"], e["path"], e["status"]) for e in log][-2:] == [
        ("GET", "/api/", 200),
        ("GET", "/api/v1/namespaces", 200),
    ]


def test_the_default_state_folder_comes_from_the_environment(
    running_sim: tuple[Path, SimInfo], monkeypatch: pytest.MonkeyPatch
) -> None:
    state_dir, info = running_sim
    monkeypatch.setenv("ORCHESTRATOR_STATE_DIR", str(state_dir))

    api = connect(SimTarget(cluster="aws"), name="local-aws")

    assert api.configuration.host == info.endpoint("aws")


def test_a_cluster_the_sim_does_not_run_is_named_with_the_ones_it_does(
    running_sim: tuple[Path, SimInfo],
) -> None:
    state_dir, _ = running_sim

    with pytest.raises(ClusterConnectionError) as caught:
        connect(SimTarget(cluster="gcp", state_dir=str(state_dir)), name="local-gcp")

    assert str(caught.value) == (
        "cluster 'local-gcp' (sim cluster gcp): the running sim has no cluster 'gcp'; it has: aws, azure"
    )


def test_no_running_sim_says_how_to_start_one(tmp_path: Path) -> None:
    with pytest.raises(ClusterConnectionError) as caught:
        connect(SimTarget(cluster="aws", state_dir=str(tmp_path)), name="local-aws")

    assert str(caught.value) == (
        f"cluster 'local-aws' (sim cluster aws): the sim is not running (nothing alive recorded in "
        f"{tmp_path / 'sim'}); start it with `orchestrator sim up`"
    )
