"""One module per kind of registry; `registry_for` picks the one a push target's config names.

The modules are imported on first use: each pulls in a cloud SDK (boto3, azure-identity, google-auth) that
a build pushing only to GHCR or a local registry should not pay for at start-up.
"""

from __future__ import annotations

import importlib

from orchestrator.build.registries.base import PushTarget, Registry, RegistryCredentials

_KINDS: dict[str, tuple[str, str]] = {
    "generic": ("orchestrator.build.registries.generic", "GenericRegistry"),
    "ecr": ("orchestrator.build.registries.ecr", "EcrRegistry"),
    "acr": ("orchestrator.build.registries.acr", "AcrRegistry"),
    "gar": ("orchestrator.build.registries.gar", "GarRegistry"),
}


def registry_for(target: PushTarget) -> Registry:
    module_name, class_name = _KINDS[target.config.type]
    kind: type[Registry] = getattr(importlib.import_module(module_name), class_name)
    return kind(target)


__all__ = ["PushTarget", "Registry", "RegistryCredentials", "registry_for"]
