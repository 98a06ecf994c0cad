"""The real Docker daemon for tests, a base image made from busybox-static, and cleanup of what tests built.

Cleanup is precise, because other suites may use the same daemon at the same time: a test's images are
those descending from this run's own base image (the import gives it a unique ID), plus those tagged with
names the test owns (its registries' hosts, its repository prefix). Nothing else is touched.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator

import docker
import docker.errors
import pytest
import requests.exceptions

from scripts.base_image import MissingProgramError, make_base_image


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    """A client of the daemon at DOCKER_HOST (or the local socket); FAILS the test when there is none."""
    try:
        client = docker.from_env()
        client.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        pytest.fail(
            f"a running Docker daemon is needed (dockerd; DOCKER_HOST to use another): {exc}", pytrace=False
        )
    yield client
    client.close()


@pytest.fixture(scope="session")
def base_image(docker_client: docker.DockerClient) -> Iterator[str]:
    """`orchestrator-test/busybox:<random>`, imported for this run; removed with every image built on it."""
    name = f"orchestrator-test/busybox:{uuid.uuid4().hex[:12]}"
    try:
        image_id = make_base_image(docker_client, name)
    except MissingProgramError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield name
    remove_images(docker_client, [*descendants_of(docker_client, image_id), image_id])


def descendants_of(client: docker.DockerClient, image_id: str) -> list[str]:
    """Every image built on `image_id` (intermediate ones included), children before their parents."""
    children: dict[str, list[str]] = {}
    for image in client.api.images(all=True):
        parent = image.get("ParentId")
        if parent:
            children.setdefault(parent, []).append(image["Id"])
    ordered: list[str] = []

    def visit(node: str) -> None:
        for child in children.get(node, []):
            visit(child)
            ordered.append(child)

    visit(image_id)
    return ordered


def images_named(client: docker.DockerClient, prefixes: Iterable[str]) -> list[str]:
    """IDs of images with a tag starting with one of `prefixes` (e.g. `127.0.0.1:5123/`)."""
    wanted = tuple(prefixes)
    found = []
    for image in client.api.images(all=True):
        if any(tag.startswith(wanted) for tag in image.get("RepoTags") or []):
            found.append(image["Id"])
    return found


def remove_images(client: docker.DockerClient, image_ids: Iterable[str]) -> None:
    """Remove the images (and their containers); ones already gone are fine."""
    ids = list(dict.fromkeys(image_ids))
    for container in client.containers.list(all=True):
        if container.attrs.get("Image") in ids:
            container.remove(force=True)
    for image_id in ids:
        try:
            client.api.remove_image(image_id, force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if "conflict" not in str(exc).lower():
                raise


class DockerJanitor:
    """Removes, when the test ends, the images tagged with the names the test registered."""

    def __init__(self, client: docker.DockerClient) -> None:
        self.client = client
        self.prefixes: list[str] = []

    def own(self, prefix: str) -> str:
        self.prefixes.append(prefix)
        return prefix

    def clean(self) -> None:
        if self.prefixes:
            remove_images(self.client, images_named(self.client, self.prefixes))


@pytest.fixture
def docker_janitor(docker_client: docker.DockerClient) -> Iterator[DockerJanitor]:
    janitor = DockerJanitor(docker_client)
    yield janitor
    janitor.clean()
