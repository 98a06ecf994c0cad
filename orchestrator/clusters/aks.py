"""Azure AKS: the cluster user kubeconfig from Azure Resource Manager, turned into a client.

`listClusterUserCredential` (the call behind `az aks get-credentials`) returns a kubeconfig. For clusters
with local accounts it carries a token (and often a client certificate), which the kubernetes loader uses
as is. For Microsoft Entra ID (AAD) clusters it names the `kubelogin` exec plugin instead; rather than
requiring that binary, we get the same token ourselves: an Entra token for the AKS server application,
from the same DefaultAzureCredential that talked to Resource Manager.
"""

from __future__ import annotations

import os
import time
from typing import Any

import azure.core.exceptions
import kubernetes.client
import kubernetes.config
import yaml
from azure.core.credentials import TokenCredential
from azure.identity import DefaultAzureCredential
from azure.mgmt.containerservice import ContainerServiceClient

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
from orchestrator.clusters.targets import AksTarget
from orchestrator.errors import ConfigError

DEFAULT_ARM_URL = "https://management.azure.com"
# The application id of the "Azure Kubernetes Service AAD Server", the audience of every AKS Entra token.
AKS_SERVER_APP_ID = "6dae42f8-4368-4678-94ff-3960e28e3630"

ACCESS_HINT = (
    "check the identity's Azure role on the cluster (Azure Kubernetes Service Cluster User) "
    "and its Kubernetes RBAC"
)


def connect_aks(target: AksTarget, *, name: str, clock: Clock = time.time) -> kubernetes.client.ApiClient:
    described = target.describe()
    subscription_id = target.subscription_id or os.environ.get("AZURE_SUBSCRIPTION_ID")
    if not subscription_id:
        raise ConfigError(
            f"cluster {name!r}: no Azure subscription: set target.subscriptionId or AZURE_SUBSCRIPTION_ID",
            key="target.subscriptionId",
        )
    credential = azure_credential()
    kubeconfig = _cluster_user_kubeconfig(target, subscription_id, credential, name=name)

    user = _current_user(kubeconfig)
    exec_plugin = user.get("exec") if isinstance(user, dict) else None
    if isinstance(exec_plugin, dict) and _is_kubelogin(exec_plugin):
        api_client = _client_with_entra_token(kubeconfig, exec_plugin, credential, name, described, clock)
    else:
        try:
            api_client = kubernetes.config.new_client_from_config_dict(kubeconfig, persist_config=False)
        except (kubernetes.config.ConfigException, KeyError, ValueError) as exc:
            raise ClusterConnectionError(
                name, f"AKS returned a kubeconfig we cannot use: {exc}", target=described
            ) from exc
    try:
        verify_connection(api_client, cluster=name, target=described, access_hint=ACCESS_HINT)
    except ClusterConnectionError:
        api_client.close()
        raise
    return api_client


def azure_credential() -> TokenCredential:
    """The credential chain `az` users expect: environment, workload identity, managed identity, Azure CLI…"""
    # Instance discovery asks login.microsoftonline.com whether the authority host is a Microsoft one. It
    # is skipped for Microsoft's own hosts anyway, and for a private authority set in AZURE_AUTHORITY_HOST
    # (Azure Stack, a test double) it can only fail; turning it off trusts the configured host.
    return DefaultAzureCredential(disable_instance_discovery=True)


def _cluster_user_kubeconfig(
    target: AksTarget, subscription_id: str, credential: TokenCredential, *, name: str
) -> dict[str, Any]:
    described = target.describe()
    base_url = (target.base_url or DEFAULT_ARM_URL).rstrip("/")
    client = ContainerServiceClient(
        credential,
        subscription_id,
        base_url=base_url,
        # Resource Manager tokens are issued for the ARM endpoint itself (sovereign clouds have their own).
        credential_scopes=[f"{base_url}/.default"],
        retry_total=2,
        connection_timeout=10,
        read_timeout=60,
    )
    try:
        with client:
            results = client.managed_clusters.list_cluster_user_credentials(
                target.resource_group, target.cluster, format="exec"
            )
    except azure.core.exceptions.AzureError as exc:
        raise ClusterConnectionError(name, _azure_cause(exc, base_url), target=described) from exc

    kubeconfigs = results.kubeconfigs or []
    problem = "no kubeconfig for the cluster user"
    loaded: object = None
    if kubeconfigs and kubeconfigs[0].value:
        try:
            loaded = yaml.safe_load(kubeconfigs[0].value)
            problem = "" if isinstance(loaded, dict) else "a kubeconfig that is not a mapping"
        except yaml.YAMLError as exc:
            problem = f"a kubeconfig that is not YAML ({exc})"
    if problem or not isinstance(loaded, dict):
        raise ClusterConnectionError(name, f"AKS returned {problem}", target=described)
    return loaded


def _client_with_entra_token(
    kubeconfig: dict[str, Any],
    exec_plugin: dict[str, Any],
    credential: TokenCredential,
    name: str,
    described: str,
    clock: Clock,
) -> kubernetes.client.ApiClient:
    cluster = _current_cluster(kubeconfig)
    server = cluster.get("server")
    ca_data = cluster.get("certificate-authority-data")
    if not isinstance(server, str) or not isinstance(ca_data, str):
        raise ClusterConnectionError(
            name, "AKS returned a kubeconfig without server or certificate-authority-data", target=described
        )
    ca_pem = certificate_authority_pem(ca_data, cluster=name, target=described, source="AKS")
    scope = f"{_server_id(exec_plugin)}/.default"

    def fetch() -> BearerToken:
        access = credential.get_token(scope)
        return BearerToken(access.token, expires_at=float(access.expires_on))

    token = RefreshingToken(fetch, cluster=name, target=described, clock=clock)
    tls_server_name = cluster.get("tls-server-name")
    return api_client_for(
        server,
        ca_pem=ca_pem,
        token=token,
        tls_server_name=tls_server_name if isinstance(tls_server_name, str) else None,
    )


def _is_kubelogin(exec_plugin: dict[str, Any]) -> bool:
    command = exec_plugin.get("command")
    return isinstance(command, str) and os.path.basename(command) in ("kubelogin", "kubelogin.exe")


def _server_id(exec_plugin: dict[str, Any]) -> str:
    # kubelogin is told the audience with `--server-id <app id>`; AKS always uses the same one, but a
    # kubeconfig that says otherwise is the authority.
    args = [str(a) for a in exec_plugin.get("args") or []]
    for i, arg in enumerate(args):
        if arg == "--server-id" and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--server-id="):
            return arg.split("=", 1)[1]
    return AKS_SERVER_APP_ID


def _current_context(kubeconfig: dict[str, Any]) -> dict[str, Any]:
    wanted = kubeconfig.get("current-context")
    contexts = kubeconfig.get("contexts") or []
    for entry in contexts:
        if isinstance(entry, dict) and (wanted is None or entry.get("name") == wanted):
            context = entry.get("context")
            return context if isinstance(context, dict) else {}
    return {}


def _named(kubeconfig: dict[str, Any], section: str, key: str, name: object) -> dict[str, Any]:
    for entry in kubeconfig.get(section) or []:
        if isinstance(entry, dict) and entry.get("name") == name:
            value = entry.get(key)
            return value if isinstance(value, dict) else {}
    return {}


def _current_user(kubeconfig: dict[str, Any]) -> dict[str, Any]:
    return _named(kubeconfig, "users", "user", _current_context(kubeconfig).get("user"))


def _current_cluster(kubeconfig: dict[str, Any]) -> dict[str, Any]:
    return _named(kubeconfig, "clusters", "cluster", _current_context(kubeconfig).get("cluster"))


def _azure_cause(exc: azure.core.exceptions.AzureError, base_url: str) -> str:
    if isinstance(exc, azure.core.exceptions.ClientAuthenticationError) and exc.response is None:
        # Raised by the credential before any request reached Resource Manager.
        return f"could not get an Azure token: {_credential_failure(str(exc.message))}"
    if isinstance(exc, azure.core.exceptions.HttpResponseError):
        odata = getattr(exc, "error", None)
        code = getattr(odata, "code", None)
        message = getattr(odata, "message", None) or exc.reason or _first_line(exc.message)
        status = exc.status_code
        if status == 404:
            return f"Azure Resource Manager: the AKS cluster was not found ({code or 404}: {message})"
        return f"Azure Resource Manager answered {status} {code or ''}: {message}".replace("  ", " ")
    if isinstance(exc, azure.core.exceptions.ServiceRequestError):
        return f"cannot reach Azure Resource Manager at {base_url}: {network_failure(exc)}"
    return f"Azure Resource Manager call failed: {_first_line(exc.message)}"


def _credential_failure(message: str) -> str:
    # DefaultAzureCredential lists every credential it tried, one per line, then a link; the lines that
    # say why the configured credentials failed are the useful part.
    lines = [line.strip() for line in message.splitlines()]
    if "Attempted credentials:" in lines:
        tried = lines[lines.index("Attempted credentials:") + 1 :]
        reasons = [line for line in tried if line and not line.startswith("To mitigate")]
        if reasons:
            return "; ".join(reasons)
    return _first_line(message)


def _first_line(text: object) -> str:
    lines = str(text).strip().splitlines()
    return lines[0] if lines else ""
