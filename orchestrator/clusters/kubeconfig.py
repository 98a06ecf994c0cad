"""A cluster named by a kubeconfig file and context: kind, k3d, on-premises, or one set up by a cloud CLI."""

from __future__ import annotations

import os

import kubernetes.client
import kubernetes.config

from orchestrator.clusters.apiclient import verify_connection
from orchestrator.clusters.errors import ClusterConnectionError
from orchestrator.clusters.targets import KubeconfigTarget
from orchestrator.errors import ConfigError

DEFAULT_KUBECONFIG = "~/.kube/config"


def connect_kubeconfig(target: KubeconfigTarget, *, name: str) -> kubernetes.client.ApiClient:
    described = target.describe()
    where = kubeconfig_location(target)
    existing = [p for p in (os.path.expanduser(p) for p in where.split(os.pathsep) if p) if os.path.isfile(p)]
    if not existing:
        raise ConfigError(f"cluster {name!r}: kubeconfig {where} does not exist", key="target.path")
    config_file = os.pathsep.join(existing)

    try:
        contexts, current = kubernetes.config.list_kube_config_contexts(config_file=config_file)
    except (kubernetes.config.ConfigException, OSError, ValueError) as exc:
        raise ConfigError(
            f"cluster {name!r}: cannot read kubeconfig {where}: {exc}", key="target.path"
        ) from exc
    known = sorted(c["name"] for c in contexts or [] if isinstance(c, dict) and "name" in c)
    if target.context is not None and target.context not in known:
        raise ConfigError(
            f"cluster {name!r}: unknown context {target.context!r} in kubeconfig {where}; "
            f"known contexts: {', '.join(known) or 'none'}",
            key="target.context",
        )
    if target.context is None and not current:
        raise ConfigError(
            f"cluster {name!r}: kubeconfig {where} has no current context; name one "
            f"(known contexts: {', '.join(known) or 'none'})",
            key="target.context",
        )

    try:
        # persist_config=False: never write refreshed credentials back into the user's kubeconfig.
        api_client = kubernetes.config.new_client_from_config(
            config_file=config_file, context=target.context, persist_config=False
        )
    except (kubernetes.config.ConfigException, OSError, ValueError) as exc:
        raise ConfigError(
            f"cluster {name!r}: kubeconfig {where} is not usable: {exc}", key="target.path"
        ) from exc
    try:
        verify_connection(api_client, cluster=name, target=described)
    except ClusterConnectionError:
        api_client.close()
        raise
    return api_client


def kubeconfig_location(target: KubeconfigTarget) -> str:
    """The kubeconfig path(s) kubectl would read: the given path, else $KUBECONFIG, else the default."""
    return target.path or os.environ.get("KUBECONFIG") or DEFAULT_KUBECONFIG
