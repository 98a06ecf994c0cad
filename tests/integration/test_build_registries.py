"""Registry credentials for each cloud, against the real client libraries and fakes of the servers they call,
and `resolve_image` against a real docker-registry."""

# Fixtures imported from tests.services are test parameters below; ruff reads them as redefinitions.
# ruff: noqa: F811

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import secrets
import subprocess
import tarfile
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import boto3
import pytest
import requests

from orchestrator.build import ImageNotFoundError, RegistryError, resolve_image
from orchestrator.build.registries import PushTarget, registry_for
from orchestrator.build.registries.acr import AAD_SCOPE, ACR_REFRESH_TOKEN_USER
from orchestrator.config.environment import RegistryConfig
from orchestrator.errors import ConfigError
from orchestrator.store import db
from tests.fakes.aws import MotoServer
from tests.fakes.azure import FakeAzure
from tests.fakes.environment import isolate_cloud_environment, trust_ca
from tests.fakes.gcp import FakeGoogleCloud
from tests.services.cli import run_orchestrator
from tests.services.docker import DockerJanitor, base_image, docker_client, docker_janitor  # noqa: F401
from tests.services.project import make_build_project
from tests.services.registry import LocalRegistry, registry, registry_factory  # noqa: F401

MOTO_ACCOUNT = "123456789012"


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate_cloud_environment(monkeypatch, tmp_path / "home")


# --- ECR: boto3 against moto, the push against a real registry --------------------------------------------


def test_ecr_token_from_boto3_pushes_and_the_repository_is_created(
    clean_environment: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    base_image: str,
    registry_factory: Callable[..., LocalRegistry],
    docker_janitor: DockerJanitor,
) -> None:
    # moto's GetAuthorizationToken hands out AWS:<account>-auth-token; the registry knows that user.
    ecr_registry = registry_factory({"AWS": f"{MOTO_ACCOUNT}-auth-token"})
    docker_janitor.own(f"{ecr_registry.host}/")
    project = make_build_project(tmp_path / "checkout", base_image=base_image)
    docker_janitor.own(f"{project.namespace}/")
    db.upgrade(project.database_url)
    project.write_environment(
        "aws",
        {"ecr": {"type": "ecr", "host": ecr_registry.host, "region": "us-east-1", "createRepository": True}},
    )
    project.commit_all("aws environment")
    with MotoServer() as moto:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_ENDPOINT_URL_ECR": moto.url,
        }.items():
            monkeypatch.setenv(name, value)
        result = run_orchestrator(
            "build",
            "api",
            "--push",
            "--env",
            "aws",
            "-o",
            "json",
            cwd=project.root,
            env={"ORCHESTRATOR_DATABASE_URL": project.database_url},
        )
        assert result.returncode == 0, result.stderr
        view = json.loads(result.stdout)
        ecr = boto3.client("ecr", region_name="us-east-1", endpoint_url=moto.url)
        repositories = [r["repositoryName"] for r in ecr.describe_repositories()["repositories"]]
    assert repositories == [project.repository("api")]
    served = ecr_registry.manifest(project.repository("api"), view["commit"])
    assert served.headers["Docker-Content-Digest"] == view["digest"]


def test_ecr_refusal_names_the_registry(clean_environment: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_ENDPOINT_URL_ECR", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    config = RegistryConfig(type="ecr", host=f"{MOTO_ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com")
    target = PushTarget(name="ecr", config=config, repository="team/api")
    with pytest.raises(RegistryError) as caught:
        registry_for(target).credentials()
    assert caught.value.registry == f"ecr ({MOTO_ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com)"
    assert "ecr:GetAuthorizationToken failed" in str(caught.value)


def test_ecr_without_region_is_a_configuration_error(clean_environment: None) -> None:
    target = PushTarget(
        name="ecr", config=RegistryConfig(type="ecr", host="registry.example.com"), repository="a"
    )
    with pytest.raises(ConfigError, match="needs `region`"):
        registry_for(target).credentials()


# --- ACR: azure-identity against a fake Entra ID, then the /oauth2/exchange of the registry ---------------


class _AcrExchange:
    """The one ACR endpoint the login uses, on plain HTTP like any registry on 127.0.0.1."""

    def __init__(self, accept: Callable[[str], bool]) -> None:
        self.accept = accept
        self.forms: list[dict[str, str]] = []
        self.refresh_token = secrets.token_urlsafe(24)
        exchange = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                form = {k: v[0] for k, v in parse_qs(body).items()}
                exchange.forms.append(form)
                ok = self.path == "/oauth2/exchange" and form.get("grant_type") == "access_token"
                ok = ok and exchange.accept(form.get("access_token", ""))
                payload = (
                    {"refresh_token": exchange.refresh_token}
                    if ok
                    else {"errors": [{"code": "UNAUTHORIZED"}]}
                )
                data = json.dumps(payload).encode()
                self.send_response(200 if ok else 401)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> _AcrExchange:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def fake_entra(clean_environment: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeAzure, str]]:
    with FakeAzure() as azure:
        client_id, secret = azure.add_app()
        trust_ca(monkeypatch, azure.ca_path)
        monkeypatch.setenv("AZURE_AUTHORITY_HOST", azure.url)
        monkeypatch.setenv("AZURE_TENANT_ID", azure.tenant_id)
        monkeypatch.setenv("AZURE_CLIENT_ID", client_id)
        yield azure, secret


def test_acr_exchanges_an_entra_token_for_a_refresh_token(
    fake_entra: tuple[FakeAzure, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    azure, secret = fake_entra
    monkeypatch.setenv("AZURE_CLIENT_SECRET", secret)
    with _AcrExchange(lambda token: azure.token_is_valid(token, AAD_SCOPE)) as exchange:
        target = PushTarget(
            name="acr", config=RegistryConfig(type="acr", host=exchange.host), repository="a/api"
        )
        credentials = registry_for(target).credentials()
    assert credentials.username == ACR_REFRESH_TOKEN_USER
    assert credentials.password == exchange.refresh_token
    assert exchange.forms[0]["service"] == exchange.host
    assert exchange.forms[0]["tenant"] == azure.tenant_id


def test_acr_with_a_wrong_secret_names_the_registry(
    fake_entra: tuple[FakeAzure, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    azure, _ = fake_entra
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "wrong")
    with _AcrExchange(lambda token: azure.token_is_valid(token, AAD_SCOPE)) as exchange:
        target = PushTarget(
            name="acr", config=RegistryConfig(type="acr", host=exchange.host), repository="a/api"
        )
        with pytest.raises(RegistryError) as caught:
            registry_for(target).credentials()
        assert exchange.forms == []  # never got as far as the registry
    assert caught.value.registry == f"acr ({exchange.host})"
    assert "no Microsoft Entra token for ACR" in str(caught.value)


def test_acr_refusing_the_exchange_names_the_registry(
    fake_entra: tuple[FakeAzure, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, secret = fake_entra
    monkeypatch.setenv("AZURE_CLIENT_SECRET", secret)
    with _AcrExchange(lambda token: False) as exchange:
        target = PushTarget(
            name="acr", config=RegistryConfig(type="acr", host=exchange.host), repository="a/api"
        )
        with pytest.raises(RegistryError, match=r"the ACR token exchange was refused \(401\)"):
            registry_for(target).credentials()


# --- Artifact Registry: google-auth with a service-account key against a fake token endpoint -------------


def test_gar_uses_a_google_access_token_as_oauth2accesstoken(
    clean_environment: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with FakeGoogleCloud() as google:
        key_file = tmp_path / "key.json"
        key_file.write_text(json.dumps(google.service_account_info()))
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
        trust_ca(monkeypatch, google.ca_path)
        config = RegistryConfig(type="gar", host="us-central1-docker.pkg.dev/addtocloud/images")
        credentials = registry_for(PushTarget(name="gar", config=config, repository="a/api")).credentials()
        assert credentials.username == "oauth2accesstoken"
        assert credentials.password is not None and google.access_token_is_valid(credentials.password)


def test_gar_without_credentials_names_the_registry(clean_environment: None) -> None:
    config = RegistryConfig(type="gar", host="us-central1-docker.pkg.dev/addtocloud/images")
    with pytest.raises(RegistryError) as caught:
        registry_for(PushTarget(name="gar", config=config, repository="a/api")).credentials()
    assert caught.value.registry == "gar (us-central1-docker.pkg.dev)"


def test_generic_registry_reads_the_named_variables(
    clean_environment: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = RegistryConfig(
        host="ghcr.io/addtocloud", username_env="GHCR_USERNAME", password_env="GHCR_TOKEN"
    )
    target = PushTarget(name="ghcr", config=config, repository="addtocloud/api")
    monkeypatch.setenv("GHCR_USERNAME", "bot")
    with pytest.raises(
        ConfigError, match="passwordEnv names the environment variable GHCR_TOKEN, which is not set"
    ):
        registry_for(target).credentials()
    monkeypatch.setenv("GHCR_TOKEN", "t0ken")
    credentials = registry_for(target).credentials()
    assert (credentials.username, credentials.password) == ("bot", "t0ken")
    assert target.image_name == "ghcr.io/addtocloud/addtocloud/api"


# --- resolve_image: a tag pinned to its digest -------------------------------------------------------------


def _upload_image(registry: LocalRegistry, repository: str, tag: str) -> str:
    """Put a one-layer image straight through the registry API; returns its manifest digest."""
    auth = (registry.username, registry.password)
    layer_tar = io.BytesIO()
    with tarfile.open(fileobj=layer_tar, mode="w") as archive:
        data = b"hello\n"
        info = tarfile.TarInfo("hello.txt")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    layer = gzip.compress(layer_tar.getvalue(), mtime=0)
    diff_id = "sha256:" + hashlib.sha256(layer_tar.getvalue()).hexdigest()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "config": {},
        }
    ).encode()
    descriptors = []
    for blob, media_type in (
        (config, "application/vnd.oci.image.config.v1+json"),
        (layer, "application/vnd.oci.image.layer.v1.tar+gzip"),
    ):
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        start = requests.post(f"{registry.url}/v2/{repository}/blobs/uploads/", auth=auth, timeout=10)
        assert start.status_code == 202, start.text
        location = requests.compat.urljoin(registry.url, start.headers["Location"])
        done = requests.put(
            location,
            params={"digest": digest},
            data=blob,
            auth=auth,
            timeout=10,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert done.status_code == 201, done.text
        descriptors.append({"mediaType": media_type, "digest": digest, "size": len(blob)})
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": descriptors[0],
            "layers": descriptors[1:],
        }
    ).encode()
    put = requests.put(
        f"{registry.url}/v2/{repository}/manifests/{tag}",
        data=manifest,
        auth=auth,
        timeout=10,
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
    )
    assert put.status_code == 201, put.text
    return "sha256:" + hashlib.sha256(manifest).hexdigest()


def test_resolve_image_pins_a_tag_to_its_digest(
    clean_environment: None, monkeypatch: pytest.MonkeyPatch, registry: LocalRegistry
) -> None:
    digest = _upload_image(registry, "team/web", "v1")
    monkeypatch.setenv("TEAM_USER", registry.username)
    monkeypatch.setenv("TEAM_TOKEN", registry.password)
    team = RegistryConfig(host=f"{registry.host}/team", username_env="TEAM_USER", password_env="TEAM_TOKEN")

    assert (
        resolve_image(f"{registry.host}/team/web:v1", registries=[team])
        == f"{registry.host}/team/web@{digest}"
    )
    pinned = f"{registry.host}/team/web@{digest}"
    assert resolve_image(pinned) == pinned  # already a digest: no registry call needed
    with pytest.raises(ImageNotFoundError, match=f"registry {registry.host}.* has no image team/web:v2"):
        resolve_image(f"{registry.host}/team/web:v2", registries=[team])
    with pytest.raises(ConfigError, match="not a valid tag"):
        resolve_image(f"{registry.host}/team/web:bad tag")


def test_resolve_image_uses_docker_login_credentials(
    clean_environment: None, tmp_path: Path, registry: LocalRegistry
) -> None:
    digest = _upload_image(registry, "team/web", "v1")
    auth = base64.b64encode(f"{registry.username}:{registry.password}".encode()).decode()
    docker_dir = tmp_path / "home" / ".docker"
    docker_dir.mkdir(parents=True)
    (docker_dir / "config.json").write_text(json.dumps({"auths": {registry.host: {"auth": auth}}}))
    assert resolve_image(f"{registry.host}/team/web:v1") == f"{registry.host}/team/web@{digest}"


def test_resolve_image_leaves_the_tag_when_the_registry_is_unreachable(clean_environment: None) -> None:
    from tests.services.registry import free_port

    ref = f"127.0.0.1:{free_port()}/team/web:v1"
    assert resolve_image(ref) == ref


def test_docker_registry_program_is_installed() -> None:
    # The registry fixtures fail without it; this says so plainly when the machine lacks the package.
    version = subprocess.run(["docker-registry", "--version"], capture_output=True, text=True, check=True)
    assert "distribution" in version.stdout
