"""A throwaway project checkout to build from: the reference estate and services/, committed to a fresh git
repository, with the services' base image and image repositories made unique to the test."""

from __future__ import annotations

import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.store import db
from tests.helpers import REPO, copy_estate
from tests.services.docker import DockerJanitor

# What `orchestrator build` prints for the image it pushed.
DIGEST = re.compile(r"^digest: (sha256:[0-9a-f]{64})$", re.MULTILINE)

SOURCE_URL = "https://github.com/addtocloud/orchestrator"


@dataclass
class BuildProject:
    root: Path
    namespace: str  # unique first part of every image repository, e.g. t1a2b3c4
    database_url: str

    def repository(self, service: str) -> str:
        return f"{self.namespace}/{service}"

    def git(self, *args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=self.root, check=True, capture_output=True, text=True
        ).stdout.strip()

    def commit_all(self, message: str) -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD")

    def edit_pipeline(self, service: str, **build: Any) -> None:
        path = self.root / "pipelines" / f"{service}.yaml"
        data = yaml.safe_load(path.read_text())
        data["build"].update(build)
        path.write_text(yaml.safe_dump(data, sort_keys=False))

    def write_environment(self, name: str, registries: dict[str, dict[str, Any]]) -> None:
        """An environment with one sim cluster per registry, each pulling from its registry."""
        clusters = []
        share = 100 // len(registries)
        for index, key in enumerate(registries):
            weight = share if index < len(registries) - 1 else 100 - share * (len(registries) - 1)
            clusters.append(
                {
                    "name": f"c{index}",
                    "cloud": "onprem",
                    "region": "local",
                    "weight": weight,
                    "target": {"type": "sim", "cluster": f"c{index}"},
                    "registry": key,
                }
            )
        document = {"clusters": clusters, "registries": registries}
        (self.root / "environments" / f"{name}.yaml").write_text(yaml.safe_dump(document, sort_keys=False))


def make_build_project(folder: Path, *, base_image: str) -> BuildProject:
    """Estate + services in `folder`, the services built on `base_image`, all committed; origin set."""
    root = copy_estate(folder)
    shutil.copytree(REPO / "services", root / "services")
    namespace = f"t{uuid.uuid4().hex[:10]}"
    project = BuildProject(root=root, namespace=namespace, database_url=f"sqlite:///{folder / 'state.db'}")
    for service in ("api", "frontend"):
        project.edit_pipeline(
            service, args={"BASE_IMAGE": base_image}, repository=project.repository(service)
        )
    project.git("init", "-q", "-b", "main")
    project.git("config", "user.email", "ci@example.com")
    project.git("config", "user.name", "CI")
    project.git("config", "commit.gpgsign", "false")
    project.git("remote", "add", "origin", f"git@github.com:{SOURCE_URL.split('github.com/')[1]}.git")
    project.commit_all("estate and services")
    return project


@pytest.fixture
def project(tmp_path: Path, base_image: str, docker_janitor: DockerJanitor) -> Iterator[BuildProject]:
    """A fresh checkout to build from, its images cleaned up after the test, its database migrated."""
    made = make_build_project(tmp_path / "checkout", base_image=base_image)
    docker_janitor.own(f"{made.namespace}/")
    db.upgrade(made.database_url)
    yield made
