"""The emulator's rivals: another manager that writes an object just before a client does, or on a timer."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.kube.client import KubeApiError
from orchestrator.sim.rivals import Rival
from orchestrator.sim.server import SimServer
from tests.integration.rollout_fixtures import sim_client

CM = "/api/v1/namespaces/default/configmaps/shared"


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimServer]:
    with SimServer(clusters=("aws",), state_dir=tmp_path, run_controllers=False) as server:
        client = sim_client(server, "aws")
        client.apply(
            CM,
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "shared"}, "data": {"ours": "0"}},
            field_manager="us",
        )
        yield server
        server.cluster("aws").rivals.clear()


def theirs(obj: dict[str, Any], n: int) -> None:
    obj.setdefault("data", {})["theirs"] = str(n)


def test_a_guarded_write_is_refused_preempt_times_in_a_row_then_let_through(sim: SimServer) -> None:
    client = sim_client(sim, "aws")
    rival = sim.cluster("aws").rivals.add(Rival(CM, theirs, preempt=2))
    sim.cluster("aws").request_log.reset()
    statuses = []
    for _ in range(3):
        live = client.get(CM)
        assert live is not None
        live["data"]["ours"] = "1"
        try:
            client.replace(CM, live, field_manager="us")
            statuses.append(200)
        except KubeApiError as exc:
            statuses.append(exc.status)
    assert statuses == [409, 409, 200]
    assert client.get(CM)["data"] == {"ours": "1", "theirs": "2"}  # type: ignore[index]
    # Only the client's requests are in the log: the rival writes to the API directly.
    logged = [(e.method, e.status) for e in sim.cluster("aws").request_log.entries()]
    assert logged == [("GET", 200), ("PUT", 409)] * 2 + [("GET", 200), ("PUT", 200), ("GET", 200)]
    managers = {m["manager"] for m in client.get(CM)["metadata"]["managedFields"]}  # type: ignore[index]
    assert managers == {"us", rival.manager}


def test_an_unguarded_patch_lands_on_top_of_the_rivals_write(sim: SimServer) -> None:
    client = sim_client(sim, "aws")
    sim.cluster("aws").rivals.add(Rival(CM, theirs, preempt=5))
    client.merge_patch(CM, {"data": {"ours": "2"}}, field_manager="us")
    assert client.get(CM)["data"] == {"ours": "2", "theirs": "1"}  # type: ignore[index]


def test_a_started_rival_writes_on_its_own(sim: SimServer) -> None:
    rivals = sim.cluster("aws").rivals
    rival = rivals.add(Rival(CM, theirs))
    rivals.start(rival, interval=0.02)
    deadline = time.monotonic() + 5
    while len(rival.writes) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    rivals.stop(rival)
    count = len(rival.writes)
    assert count >= 3
    assert sim_client(sim, "aws").get(CM)["data"]["theirs"] == str(count)  # type: ignore[index]
    time.sleep(0.1)
    assert len(rival.writes) == count  # stopped


def test_a_started_rival_holds_off_while_the_write_it_preempted_is_owed_its_pass(sim: SimServer) -> None:
    """The timer does not break the bounded storm: once the rival has refused a write `preempt` times, it
    waits for that write to land, however long the client takes between its read and its PUT."""
    client = sim_client(sim, "aws")
    rivals = sim.cluster("aws").rivals
    rival = rivals.add(Rival(CM, theirs, preempt=2))
    rivals.start(rival, interval=0.01)
    statuses = []
    while True:
        live = client.get(CM)
        assert live is not None
        if statuses.count(409) == 2:
            owed = len(rival.writes)
            time.sleep(0.2)  # a slow client: twenty of the rival's ticks between our read and our PUT
            assert len(rival.writes) == owed
        live["data"]["ours"] = "1"
        try:
            client.replace(CM, live, field_manager="us")
            statuses.append(200)
            break
        except KubeApiError as exc:
            statuses.append(exc.status)
            assert len(statuses) < 3, statuses
    assert statuses == [409, 409, 200]
    deadline = time.monotonic() + 5
    landed = len(rival.writes)
    while len(rival.writes) == landed and time.monotonic() < deadline:
        time.sleep(0.01)
    rivals.stop(rival)
    assert len(rival.writes) > landed  # ...and writes on its own again once that write went through
