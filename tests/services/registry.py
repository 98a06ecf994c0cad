"""A real `docker-registry` (Debian's build of distribution) on 127.0.0.1 with htpasswd basic auth.

Docker treats registries on 127.0.0.0/8 as insecure, so plain HTTP works for pushes from the daemon.
The process, its storage and its config live in a temporary folder; `stop()` ends the process.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import bcrypt
import pytest
import requests

REGISTRY_BINARY = "docker-registry"
START_TIMEOUT_S = 20.0
MANIFEST_ACCEPT = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LocalRegistry:
    def __init__(self, users: dict[str, str] | None = None) -> None:
        self.users = users if users is not None else {"ci": uuid.uuid4().hex}
        self.port = 0
        self.folder: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def username(self) -> str:
        return next(iter(self.users))

    @property
    def password(self) -> str:
        return self.users[self.username]

    def start(self) -> LocalRegistry:
        binary = shutil.which(REGISTRY_BINARY)
        if binary is None:
            raise RuntimeError("the docker-registry program is needed: apt-get install docker-registry")
        self.folder = Path(tempfile.mkdtemp(prefix="test-registry-"))
        (self.folder / "storage").mkdir()
        lines = [
            f"{user}:{bcrypt.hashpw(pw.encode(), bcrypt.gensalt(rounds=5)).decode()}"
            for user, pw in self.users.items()
        ]
        (self.folder / "htpasswd").write_text("\n".join(lines) + "\n")
        self.port = free_port()
        config = self.folder / "config.yml"
        config.write_text(
            "version: 0.1\n"
            "log:\n  level: warn\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.folder / 'storage'}\n"
            "  delete:\n    enabled: true\n"
            f"http:\n  addr: {self.host}\n  secret: {uuid.uuid4().hex}\n"
            f"auth:\n  htpasswd:\n    realm: test-registry\n    path: {self.folder / 'htpasswd'}\n"
        )
        log = (self.folder / "registry.log").open("wb")
        self.process = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"docker-registry exited at start:\n{self.log()}")
            try:
                if requests.get(f"{self.url}/v2/", timeout=1).status_code in (200, 401):
                    return self
            except requests.ConnectionError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"docker-registry did not answer on {self.host} within {START_TIMEOUT_S}s")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
            self.process = None
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def log(self) -> str:
        path = self.folder / "registry.log" if self.folder else None
        return path.read_text(errors="replace") if path and path.exists() else ""

    # --- what a test checks, straight from the registry API (not through the code under test) ---------

    def manifest(self, repository: str, reference: str) -> requests.Response:
        return requests.get(
            f"{self.url}/v2/{repository}/manifests/{reference}",
            headers={"Accept": MANIFEST_ACCEPT},
            auth=(self.username, self.password),
            timeout=10,
        )

    def tags(self, repository: str) -> list[str]:
        response = requests.get(
            f"{self.url}/v2/{repository}/tags/list", auth=(self.username, self.password), timeout=10
        )
        if response.status_code == 404:
            return []
        response.raise_for_status()
        return sorted(response.json().get("tags") or [])

    def blob_count(self) -> int:
        """How many blobs the registry stores (each layer and config counted once)."""
        assert self.folder is not None
        blobs = self.folder / "storage" / "docker" / "registry" / "v2" / "blobs"
        return sum(1 for _ in blobs.glob("sha256/*/*/data")) if blobs.exists() else 0


@pytest.fixture
def registry_factory() -> Iterator[Callable[..., LocalRegistry]]:
    """Start as many registries as a test needs; all are stopped (and their storage removed) afterwards."""
    started: list[LocalRegistry] = []

    def start(users: dict[str, str] | None = None) -> LocalRegistry:
        registry = LocalRegistry(users)
        try:
            registry.start()
        except RuntimeError as exc:
            pytest.fail(str(exc), pytrace=False)
        started.append(registry)
        return registry

    yield start
    for registry in started:
        registry.stop()


@pytest.fixture
def registry(registry_factory: Callable[..., LocalRegistry]) -> LocalRegistry:
    return registry_factory()
