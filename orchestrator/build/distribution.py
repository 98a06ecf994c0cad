"""A small client of the registry HTTP API (OCI distribution spec): manifests, blobs, and copying images.

Docker pushes what it built; this client answers "is the image for this commit already there?" (manifest
HEAD), verifies the digest a push reported, adds tags without Docker (manifest PUT), and copies an image
from one registry to another blob by blob, so the copy has the very same digest.

Authentication follows the registry's `WWW-Authenticate` challenge: Basic with the credentials given, or a
Bearer token fetched from the realm it names (Docker Hub, GHCR, ACR, Artifact Registry).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from orchestrator.build.errors import RegistryError
from orchestrator.build.reference import registry_api_host
from orchestrator.build.registries.base import RegistryCredentials
from orchestrator.logs import get_logger

log = get_logger(__name__)

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
# Without this Accept header a registry may answer with (or convert to) the old schema 1 and its digest.
MANIFEST_ACCEPT = ", ".join((OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST))
_INDEX_TYPES = (OCI_INDEX, DOCKER_MANIFEST_LIST)
_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

REQUEST_TIMEOUT_S = 30.0
BLOB_CHUNK_BYTES = 1 << 20
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


@dataclass(frozen=True)
class Manifest:
    digest: str
    media_type: str
    body: bytes

    def document(self) -> dict[str, Any]:
        parsed = json.loads(self.body)
        if not isinstance(parsed, dict):
            raise ValueError("a manifest is a JSON object")
        return parsed


@dataclass
class CopyStats:
    blobs_copied: int = 0
    blobs_present: int = 0


class RegistryClient:
    """One registry's API, authenticated as `credentials`; `label` names the registry in every error."""

    def __init__(
        self,
        registry: str,
        *,
        credentials: RegistryCredentials | None = None,
        insecure: bool = False,
        label: str | None = None,
        timeout: float = REQUEST_TIMEOUT_S,
    ) -> None:
        self.registry = registry
        self.label = label or registry
        self.credentials = credentials or RegistryCredentials()
        scheme = "http" if insecure else "https"
        self.base_url = f"{scheme}://{registry_api_host(registry)}"
        self._http = httpx.Client(timeout=timeout, follow_redirects=True)
        self._authorization: dict[str, str] = {}  # scope → Authorization header value

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- manifests ------------------------------------------------------------------------------------

    def manifest_digest(self, repository: str, reference: str) -> str | None:
        """The digest `reference` (a tag or digest) points to, or None when the registry has no such image."""
        response = self._send(
            "HEAD",
            f"/v2/{repository}/manifests/{reference}",
            repository,
            "pull",
            headers={"Accept": MANIFEST_ACCEPT},
        )
        if response.status_code == 404:
            return None
        self._raise_for_status(response, f"HEAD manifest {repository}:{reference}")
        digest = response.headers.get("Docker-Content-Digest")
        if digest:
            return digest
        manifest = self.get_manifest(repository, reference)  # some registries leave the header out of HEAD
        return manifest.digest if manifest else None

    def get_manifest(self, repository: str, reference: str) -> Manifest | None:
        response = self._send(
            "GET",
            f"/v2/{repository}/manifests/{reference}",
            repository,
            "pull",
            headers={"Accept": MANIFEST_ACCEPT},
        )
        if response.status_code == 404:
            return None
        self._raise_for_status(response, f"GET manifest {repository}:{reference}")
        body = response.content
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        if not media_type:
            media_type = str(json.loads(body).get("mediaType") or DOCKER_MANIFEST)
        return Manifest(digest=digest, media_type=media_type, body=body)

    def put_manifest(self, repository: str, reference: str, manifest: Manifest) -> str:
        """Store `manifest` under `reference` (a tag or its digest); returns the digest the registry gives."""
        response = self._send(
            "PUT",
            f"/v2/{repository}/manifests/{reference}",
            repository,
            "pull,push",
            headers={"Content-Type": manifest.media_type},
            content=manifest.body,
        )
        self._raise_for_status(response, f"PUT manifest {repository}:{reference}")
        return response.headers.get("Docker-Content-Digest") or manifest.digest

    # --- blobs ----------------------------------------------------------------------------------------

    def blob_exists(self, repository: str, digest: str) -> bool:
        response = self._send("HEAD", f"/v2/{repository}/blobs/{digest}", repository, "pull")
        if response.status_code == 404:
            return False
        self._raise_for_status(response, f"HEAD blob {digest}")
        return True

    @contextmanager
    def read_blob(self, repository: str, digest: str) -> Iterator[Iterator[bytes]]:
        path = f"/v2/{repository}/blobs/{digest}"
        self._send("HEAD", path, repository, "pull")  # answer the auth challenge before streaming
        request = self._http.build_request(
            "GET", self._url(path), headers=self._auth_headers(repository, "pull")
        )
        try:
            response = self._http.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc
        try:
            if response.status_code != 200:
                response.read()
                self._raise_for_status(response, f"GET blob {digest}")
            yield response.iter_bytes(BLOB_CHUNK_BYTES)
        finally:
            response.close()

    def upload_blob(self, repository: str, digest: str, chunks: Iterator[bytes]) -> None:
        """Start an upload session, stream the bytes in one PATCH, and close it with the digest."""
        start = self._send("POST", f"/v2/{repository}/blobs/uploads/", repository, "pull,push")
        self._raise_for_status(start, f"start blob upload {digest}")
        location = self._location(start)
        headers = {**self._auth_headers(repository, "pull,push"), "Content-Type": "application/octet-stream"}
        try:
            patch = self._http.patch(location, content=chunks, headers=headers)
            self._raise_for_status(patch, f"upload blob {digest}")
            done = self._http.put(
                httpx.URL(self._location(patch)).copy_merge_params({"digest": digest}),
                headers=self._auth_headers(repository, "pull,push"),
            )
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc
        self._raise_for_status(done, f"finish blob upload {digest}")

    # --- requests and authentication ------------------------------------------------------------------

    def ping(self) -> None:
        """GET /v2/ authenticated: fails with the reason when the registry is unreachable or refuses us."""
        response = self._send("GET", "/v2/", "", "")
        self._raise_for_status(response, "GET /v2/")

    def _url(self, path: str) -> str:
        return self.base_url + path

    def _location(self, response: httpx.Response) -> httpx.URL:
        location = response.headers.get("Location")
        if not location:
            raise RegistryError(
                self.label, f"{response.request.method} {response.request.url.path} gave no Location"
            )
        return httpx.URL(self.base_url).join(location)

    def _auth_headers(self, repository: str, actions: str) -> dict[str, str]:
        value = self._authorization.get(_scope(repository, actions)) or self._authorization.get("")
        return {"Authorization": value} if value else {}

    def _send(
        self,
        method: str,
        path: str,
        repository: str,
        actions: str,
        *,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        scope = _scope(repository, actions)
        for attempt in range(2):
            merged = {**(headers or {}), **self._auth_headers(repository, actions)}
            try:
                response = self._http.request(method, self._url(path), headers=merged, content=content)
            except httpx.HTTPError as exc:
                raise self._unreachable(exc) from exc
            if response.status_code != 401 or attempt == 1:
                return response
            challenge = response.headers.get("WWW-Authenticate", "")
            if not self._answer_challenge(challenge, scope):
                return response
        raise AssertionError("unreachable")

    def _answer_challenge(self, challenge: str, scope: str) -> bool:
        """Get an Authorization header for `scope`; False when there is nothing new to try."""
        scheme, _, params_text = challenge.partition(" ")
        params = dict(_CHALLENGE_PARAM.findall(params_text))
        if scheme.lower() == "basic":
            basic = self.credentials.basic_header()
            if basic is None or self._authorization.get("") == basic:
                return False
            self._authorization[""] = basic  # Basic is the same for every scope
            return True
        if scheme.lower() != "bearer" or "realm" not in params:
            return False
        query = {"service": params.get("service", self.registry)}
        wanted = scope or params.get("scope")
        if wanted:
            query["scope"] = wanted
        auth = None
        if not self.credentials.anonymous:
            auth = (self.credentials.username or "", self.credentials.password or "")
        try:
            answer = self._http.get(params["realm"], params=query, auth=auth)
        except httpx.HTTPError as exc:
            raise RegistryError(
                self.label, f"cannot reach the token service {params['realm']}: {exc}"
            ) from exc
        if answer.status_code != 200:
            raise RegistryError(self.label, self._refusal(answer, "the token service refused us"))
        try:
            token = answer.json().get("token") or answer.json().get("access_token")
        except ValueError:
            token = None
        if not token:
            raise RegistryError(self.label, f"the token service {params['realm']} returned no token")
        self._authorization[scope] = f"Bearer {token}"
        return True

    def _raise_for_status(self, response: httpx.Response, what: str) -> None:
        if response.status_code < 400:
            return
        if response.status_code == 401:
            raise RegistryError(self.label, self._refusal(response, f"{what}: authentication failed"))
        if response.status_code == 403:
            raise RegistryError(self.label, self._refusal(response, f"{what}: access denied"))
        raise RegistryError(
            self.label, self._refusal(response, f"{what} failed with HTTP {response.status_code}")
        )

    def _refusal(self, response: httpx.Response, summary: str) -> str:
        detail = _error_message(response)
        who = f" as user {self.credentials.username!r}" if self.credentials.username else " (no credentials)"
        if response.status_code in (401, 403):
            summary += who
        return f"{summary}: {detail}" if detail else summary

    def _unreachable(self, exc: httpx.HTTPError) -> RegistryError:
        return RegistryError(self.label, f"cannot reach {self.base_url}: {exc}")


def _scope(repository: str, actions: str) -> str:
    return f"repository:{repository}:{actions}" if repository else ""


def _error_message(response: httpx.Response) -> str:
    try:
        errors = response.json().get("errors") or []
        messages = [
            f"{e.get('code', '')} {e.get('message', '')}".strip() for e in errors if isinstance(e, dict)
        ]
        if messages:
            return "; ".join(messages)
    except (ValueError, AttributeError):
        pass
    return response.text.strip()[:300]


def copy_image(
    source: RegistryClient,
    source_repository: str,
    destination: RegistryClient,
    destination_repository: str,
    digest: str,
    tags: list[str],
) -> CopyStats:
    """Copy the image `digest` (manifest or index) with its blobs, then tag it: same bytes, same digest."""
    stats = CopyStats()
    manifest = _copy_manifest(source, source_repository, destination, destination_repository, digest, stats)
    for tag in tags:
        destination.put_manifest(destination_repository, tag, manifest)
    return stats


def _copy_manifest(
    source: RegistryClient,
    source_repository: str,
    destination: RegistryClient,
    destination_repository: str,
    digest: str,
    stats: CopyStats,
) -> Manifest:
    manifest = source.get_manifest(source_repository, digest)
    if manifest is None:
        raise RegistryError(source.label, f"{source_repository}@{digest} disappeared while being copied")
    document = manifest.document()
    if manifest.media_type in _INDEX_TYPES:
        for child in document.get("manifests", []):
            _copy_manifest(
                source, source_repository, destination, destination_repository, child["digest"], stats
            )
    else:
        blobs = [document["config"], *document.get("layers", [])]
        for blob in blobs:
            if blob.get("mediaType") == _FOREIGN_LAYER:
                continue  # foreign layers (Windows base images) are never stored in registries
            if destination.blob_exists(destination_repository, blob["digest"]):
                stats.blobs_present += 1
                continue
            with source.read_blob(source_repository, blob["digest"]) as chunks:
                destination.upload_blob(destination_repository, blob["digest"], chunks)
            stats.blobs_copied += 1
            log.debug("blob copied", digest=blob["digest"], to=destination.label)
    destination.put_manifest(destination_repository, digest, manifest)
    return manifest
