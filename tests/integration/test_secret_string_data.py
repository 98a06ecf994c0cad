"""A Secret written with stringData is stored as data (as an API server does): applying it again is no write,
and it is not drift."""

from __future__ import annotations

import base64

from orchestrator.kube.apply import apply_objects
from orchestrator.kube.drift import object_drift
from orchestrator.kube.live import read_live
from orchestrator.sim.server import SimServer
from tests.integration.rollout_fixtures import sim, sim_client  # noqa: F401

SECRET = {
    "apiVersion": "v1",
    "kind": "Secret",
    "metadata": {"name": "creds", "namespace": "team"},
    "type": "Opaque",
    "data": {"kept": base64.b64encode(b"k").decode()},
    "stringData": {"password": "s3cret", "kept": "overridden"},
}


def test_string_data_is_stored_as_data_and_a_second_apply_writes_nothing(sim: SimServer) -> None:  # noqa: F811
    client = sim_client(sim, "aws")
    first = apply_objects(client, [SECRET], namespace="team")
    assert first.writes >= 1
    live = read_live(client, SECRET)
    assert live is not None and "stringData" not in live
    assert base64.b64decode(live["data"]["password"]) == b"s3cret"
    assert base64.b64decode(live["data"]["kept"]) == b"overridden"  # stringData wins, as on a real server

    again = apply_objects(client, [SECRET], namespace="team")
    assert again.writes == 0
    assert not object_drift(SECRET, live).drifted
