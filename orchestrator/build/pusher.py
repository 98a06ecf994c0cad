"""`docker push` through the SDK: the layers Docker reports, and the digest the registry gave the manifest."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import docker
import docker.errors
import requests.exceptions

from orchestrator.build.errors import DockerUnavailableError, RegistryError
from orchestrator.build.registries.base import PushTarget, RegistryCredentials

OutputSink = Callable[[str], None]
# Layer states that end a layer's push; "Pushing"/"Preparing"/"Waiting" are progress in between.
_LAYER_DONE = ("Pushed", "Layer already exists", "Mounted from")


@dataclass
class PushOutcome:
    digest: str
    layers_pushed: set[str] = field(default_factory=set)
    layers_present: set[str] = field(default_factory=set)


def push_tag(
    client: docker.DockerClient,
    target: PushTarget,
    tag: str,
    credentials: RegistryCredentials,
    on_output: OutputSink,
) -> PushOutcome:
    """Push `target.image_name:tag`; returns the manifest digest, or raises RegistryError naming it."""
    outcome = PushOutcome(digest="")
    name = f"{target.image_name}:{tag}"
    try:
        stream = client.api.push(
            target.image_name,
            tag=tag,
            stream=True,
            decode=True,
            auth_config=credentials.docker_auth_config(),
        )
        for chunk in stream:
            _consume(chunk, outcome, target, name, on_output)
    except docker.errors.APIError as exc:
        raise RegistryError(target.describe(), f"push of {name} refused: {exc.explanation or exc}") from exc
    except (requests.exceptions.ConnectionError, docker.errors.DockerException) as exc:
        raise DockerUnavailableError(f"lost the Docker daemon while pushing {name}: {exc}") from exc
    if not outcome.digest:
        raise RegistryError(target.describe(), f"the push of {name} reported no digest")
    return outcome


def _consume(
    chunk: dict[str, Any], outcome: PushOutcome, target: PushTarget, name: str, on_output: OutputSink
) -> None:
    if "error" in chunk or "errorDetail" in chunk:
        detail = chunk.get("errorDetail") or {}
        message = str(detail.get("message") or chunk.get("error") or "unknown error").strip()
        raise RegistryError(target.describe(), f"push of {name} failed: {message}")
    aux = chunk.get("aux")
    if isinstance(aux, dict) and aux.get("Digest"):
        outcome.digest = str(aux["Digest"])
    status = str(chunk.get("status") or "")
    layer = chunk.get("id")
    if layer and status.startswith(_LAYER_DONE):
        if status == "Pushed":
            outcome.layers_pushed.add(str(layer))
        else:
            outcome.layers_present.add(str(layer))
        on_output(f"{layer}: {status}")
    elif status and not layer:
        on_output(status)
