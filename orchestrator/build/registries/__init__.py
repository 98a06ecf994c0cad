"""One module per kind of registry; `registry_for` picks the one a push target's config names."""

from __future__ import annotations

from orchestrator.build.registries.acr import AcrRegistry
from orchestrator.build.registries.base import PushTarget, Registry, RegistryCredentials
from orchestrator.build.registries.ecr import EcrRegistry
from orchestrator.build.registries.gar import GarRegistry
from orchestrator.build.registries.generic import GenericRegistry

_KINDS: dict[str, type[Registry]] = {
    "generic": GenericRegistry,
    "ecr": EcrRegistry,
    "acr": AcrRegistry,
    "gar": GarRegistry,
}


def registry_for(target: PushTarget) -> Registry:
    return _KINDS[target.config.type](target)


__all__ = ["PushTarget", "Registry", "RegistryCredentials", "registry_for"]
