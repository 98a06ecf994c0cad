"""Google GKE: endpoint and CA from the GKE API, a bearer token from Google application default credentials.

The same OAuth access token that calls the GKE API authenticates to the cluster (as
`gke-gcloud-auth-plugin` does); google-auth renews it before it expires.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from datetime import UTC
from typing import Any

import google.api_core.exceptions
import google.auth
import google.auth.exceptions
import google.auth.transport.requests
import kubernetes.client
import requests
from google.api_core.client_options import ClientOptions
from google.cloud import container_v1

from orchestrator.clusters.apiclient import (
    BearerToken,
    Clock,
    RefreshingToken,
    api_client_for,
    network_failure,
    verify_connection,
)
from orchestrator.clusters.errors import ClusterConnectionError
from orchestrator.clusters.pem import certificate_authority_pem
from orchestrator.clusters.targets import GkeTarget

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
GET_CLUSTER_TIMEOUT_SECONDS = 30.0

ACCESS_HINT = "check the account's IAM role on the project (roles/container.developer or similar)"


def connect_gke(target: GkeTarget, *, name: str, clock: Clock = time.time) -> kubernetes.client.ApiClient:
    described = target.describe()
    try:
        credentials, _ = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
    except google.auth.exceptions.GoogleAuthError as exc:
        raise ClusterConnectionError(name, f"no Google credentials: {exc}", target=described) from exc

    cluster = _get_cluster(target, credentials, name=name)
    if not cluster.endpoint or not cluster.master_auth.cluster_ca_certificate:
        status = container_v1.Cluster.Status(cluster.status).name
        raise ClusterConnectionError(
            name, f"the GKE cluster has no API endpoint yet (status {status})", target=described
        )
    ca_pem = certificate_authority_pem(
        cluster.master_auth.cluster_ca_certificate, cluster=name, target=described, source="GKE"
    )
    endpoint = cluster.endpoint if "://" in cluster.endpoint else f"https://{cluster.endpoint}"

    token = RefreshingToken(_token_fetcher(credentials), cluster=name, target=described, clock=clock)
    api_client = api_client_for(endpoint, ca_pem=ca_pem, token=token)
    try:
        verify_connection(api_client, cluster=name, target=described, access_hint=ACCESS_HINT)
    except ClusterConnectionError:
        api_client.close()
        raise
    return api_client


def _get_cluster(target: GkeTarget, credentials: Any, *, name: str) -> container_v1.Cluster:
    described = target.describe()
    options = ClientOptions(api_endpoint=target.api_endpoint) if target.api_endpoint else None
    client = container_v1.ClusterManagerClient(
        credentials=credentials, transport="rest", client_options=options
    )
    path = f"projects/{target.project}/locations/{target.location}/clusters/{target.cluster}"
    try:
        with client:
            return client.get_cluster(name=path, timeout=GET_CLUSTER_TIMEOUT_SECONDS)
    except google.api_core.exceptions.NotFound as exc:
        raise ClusterConnectionError(
            name, f"the GKE cluster was not found: {_google_message(exc)}", target=described
        ) from exc
    except google.api_core.exceptions.GoogleAPICallError as exc:
        raise ClusterConnectionError(
            name, f"GKE get_cluster failed: {exc.code} {_google_message(exc)}", target=described
        ) from exc
    except google.auth.exceptions.GoogleAuthError as exc:
        raise ClusterConnectionError(name, f"could not get a Google token: {exc}", target=described) from exc
    except (google.api_core.exceptions.RetryError, requests.RequestException) as exc:
        where = target.api_endpoint or "https://container.googleapis.com"
        cause = f"cannot reach the GKE API at {where}: {network_failure(exc)}"
        raise ClusterConnectionError(name, cause, target=described) from exc


def _token_fetcher(credentials: Any) -> Callable[[], BearerToken]:
    lock = threading.Lock()
    request = google.auth.transport.requests.Request()

    def fetch() -> BearerToken:
        with lock:
            # `valid` is false once the token is within google-auth's own refresh margin of its expiry.
            if not credentials.valid:
                credentials.refresh(request)
            expiry = credentials.expiry  # naive UTC datetime, or None for tokens that do not expire
            expires_at = None if expiry is None else expiry.replace(tzinfo=UTC).timestamp()
            return BearerToken(credentials.token, expires_at=expires_at)

    return fetch


def _google_message(exc: google.api_core.exceptions.GoogleAPICallError) -> str:
    # The REST transport prefixes the server's message with "GET https://...: "; the message is the news.
    return re.sub(r"^[A-Z]+ https?://\S+: ", "", str(exc.message))
