"""The built-in emulator (`orchestrator sim up`), found by its state file, reached with its CA and token."""

from __future__ import annotations

import kubernetes.client

from orchestrator.clusters.apiclient import BearerToken, RefreshingToken, api_client_for, verify_connection
from orchestrator.clusters.errors import ClusterConnectionError
from orchestrator.clusters.targets import SimTarget
from orchestrator.sim.client import load_running_sim, sim_dir


def connect_sim(target: SimTarget, *, name: str) -> kubernetes.client.ApiClient:
    described = target.describe()
    info = load_running_sim(target.state_dir)
    if info is None:
        raise ClusterConnectionError(
            name,
            f"the sim is not running (nothing alive recorded in {sim_dir(target.state_dir)}); "
            "start it with `orchestrator sim up`",
            target=described,
        )
    if target.cluster not in info.clusters:
        raise ClusterConnectionError(
            name,
            f"the running sim has no cluster {target.cluster!r}; it has: {', '.join(sorted(info.clusters))}",
            target=described,
        )
    try:
        ca_pem = info.ca_path.read_bytes()
    except OSError as exc:
        raise ClusterConnectionError(
            name, f"cannot read the sim's CA {info.ca_path}: {exc}", target=described
        ) from exc

    # The sim's token lives as long as the sim; it never needs renewing.
    token = RefreshingToken(lambda: BearerToken(info.token, expires_at=None), cluster=name, target=described)
    api_client = api_client_for(info.endpoint(target.cluster), ca_pem=ca_pem, token=token)
    try:
        verify_connection(api_client, cluster=name, target=described)
    except ClusterConnectionError:
        api_client.close()
        raise
    return api_client
