"""The Docker daemon the images are built on: DOCKER_HOST (and DOCKER_TLS_VERIFY/DOCKER_CERT_PATH), or the
local socket. When there is none, the message says where it looked and what to do instead."""

from __future__ import annotations

import os

import docker
import docker.errors
import requests.exceptions

from orchestrator.build.errors import DockerUnavailableError

DEFAULT_SOCKET = "unix:///var/run/docker.sock"
PING_TIMEOUT_S = 10
# Builds and pushes of big images stream for a long time; this bounds a silent daemon, not a long build.
API_TIMEOUT_S = 600


def connect_docker() -> docker.DockerClient:
    """A client whose daemon answered a ping."""
    where = os.environ.get("DOCKER_HOST") or DEFAULT_SOCKET
    source = "DOCKER_HOST" if os.environ.get("DOCKER_HOST") else "the default socket; DOCKER_HOST is not set"
    try:
        client = docker.from_env(timeout=API_TIMEOUT_S)
    except docker.errors.DockerException as exc:
        raise DockerUnavailableError(_missing(where, source, exc)) from exc
    try:
        client.api.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
        client.close()
        raise DockerUnavailableError(_missing(where, source, exc)) from exc
    return client


def _missing(where: str, source: str, exc: Exception) -> str:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return (
        f"no Docker daemon at {where} ({source}): {reason}. "
        "Building needs a running Docker daemon: start dockerd or point DOCKER_HOST at one; "
        "or skip the build and deploy a pre-built image with `deploy --image REF`"
    )
