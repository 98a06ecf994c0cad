"""`/version`, classic discovery documents and the OpenAPI v3 documents kubectl reads.

kubectl's `apply` reads `/openapi/v3` to learn whether the server validates fields itself: a patch
operation that declares the `fieldValidation` query parameter for the kind is enough for it to leave
validation to the server (otherwise apply fails unless `--validate=false`). `kubectl explain` and
client-side apply's patch strategies read the kinds' schemas (`openapi.py`).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from orchestrator.sim import authorization, openapi
from orchestrator.sim.resources import ResourceRegistry, ResourceType

KUBE_MAJOR = "1"
KUBE_MINOR = "30"


def version_info() -> dict[str, Any]:
    return {
        "major": KUBE_MAJOR,
        "minor": KUBE_MINOR,
        "gitVersion": f"v{KUBE_MAJOR}.{KUBE_MINOR}.0-sim",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2024-04-17T00:00:00Z",
        "goVersion": "go1.22.2",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def api_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def _group_doc(group: str, versions: tuple[str, ...]) -> dict[str, Any]:
    gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": gvs, "preferredVersion": gvs[0]}


def _groups(registry: ResourceRegistry) -> dict[str, tuple[str, ...]]:
    """The stored kinds' groups and authorization.k8s.io, whose reviews are answered, not stored."""
    return {**registry.groups(), authorization.GROUP: (authorization.VERSION,)}


def api_group_list(registry: ResourceRegistry) -> dict[str, Any]:
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group_doc(g, vs) for g, vs in _groups(registry).items()],
    }


def api_group(registry: ResourceRegistry, group: str) -> dict[str, Any] | None:
    versions = _groups(registry).get(group)
    if versions is None:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group_doc(group, versions)}


def _resource_entries(rt: ResourceType) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = [
        {
            "name": rt.plural,
            "singularName": rt.singular,
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
            **({"shortNames": list(rt.short_names)} if rt.short_names else {}),
            **({"categories": list(rt.categories)} if rt.categories else {}),
            "storageVersionHash": hashlib.sha256(rt.storage_key.encode()).hexdigest()[:12],
        }
    ]
    for sub in rt.subresources:
        entry: dict[str, Any] = {
            "name": f"{rt.plural}/{sub}",
            "singularName": "",
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": ["get", "patch", "update"],
        }
        if sub == "scale":
            entry.update({"group": "autoscaling", "version": "v1", "kind": "Scale"})
        entries.append(entry)
    return entries


def api_resource_list(registry: ResourceRegistry, group: str, version: str) -> dict[str, Any] | None:
    if (group, version) == (authorization.GROUP, authorization.VERSION):
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}",
            "resources": authorization.RESOURCES,
        }
    types = registry.in_group_version(group, version)
    if not types:
        return None
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": [entry for rt in types for entry in _resource_entries(rt)],
    }


# -- OpenAPI v3 ------------------------------------------------------------------------------------
def _gv_path(group: str, version: str) -> str:
    return f"api/{version}" if not group else f"apis/{group}/{version}"


_DOCUMENTS: dict[tuple[int, str, str], dict[str, Any]] = {}


def _gv_document(registry: ResourceRegistry, group: str, version: str) -> dict[str, Any]:
    """Built once per registry and group-version: the schemas are large and never change."""
    key = (id(registry), group, version)
    if key not in _DOCUMENTS:
        _DOCUMENTS[key] = _build_gv_document(registry, group, version)
    return _DOCUMENTS[key]


def _build_gv_document(registry: ResourceRegistry, group: str, version: str) -> dict[str, Any]:
    """Paths for each kind whose operations carry the query parameters kubectl looks for, and the kinds'
    schemas (`openapi.kind_schemas`)."""
    params = [
        {"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
        for name in ("dryRun", "fieldManager", "fieldValidation", "force")
    ]
    paths: dict[str, Any] = {}
    types = registry.in_group_version(group, version)
    for rt in types:
        gvk = {"group": rt.group, "version": version, "kind": rt.kind}
        base = f"/{_gv_path(group, version)}" + ("/namespaces/{namespace}" if rt.namespaced else "")
        ref = {"$ref": f"#/components/schemas/{openapi.schema_name(rt, version)}"}
        op = {
            "x-kubernetes-group-version-kind": gvk,
            "parameters": params,
            "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": ref}}}},
        }
        paths[f"{base}/{rt.plural}/{{name}}"] = {
            "get": {**op, "x-kubernetes-action": "get", "operationId": f"read{rt.kind}"},
            "put": {**op, "x-kubernetes-action": "put", "operationId": f"replace{rt.kind}"},
            "patch": {**op, "x-kubernetes-action": "patch", "operationId": f"patch{rt.kind}"},
            "delete": {**op, "x-kubernetes-action": "delete", "operationId": f"delete{rt.kind}"},
        }
        paths[f"{base}/{rt.plural}"] = {
            "post": {**op, "x-kubernetes-action": "post", "operationId": f"create{rt.kind}"},
        }
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes (addtocloud sim)", "version": f"v{KUBE_MAJOR}.{KUBE_MINOR}.0"},
        "paths": paths,
        "components": {"schemas": openapi.kind_schemas(types, version, f"{KUBE_MAJOR}.{KUBE_MINOR}")},
    }


_HASHES: dict[int, str] = {}


def _hash(doc: dict[str, Any]) -> str:
    if id(doc) not in _HASHES:  # documents are cached for the process's life, so their ids stay theirs
        _HASHES[id(doc)] = hashlib.sha512(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:64].upper()
    return _HASHES[id(doc)]


def openapi_v3_root(registry: ResourceRegistry) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    gvs = {("", "v1")} | {(rt.group, v) for rt in registry.types for v in rt.versions}
    for group, version in sorted(gvs):
        doc = _gv_document(registry, group, version)
        rel = _gv_path(group, version)
        paths[rel] = {"serverRelativeURL": f"/openapi/v3/{rel}?hash={_hash(doc)}"}
    return {"paths": paths}


def openapi_v3_group_version(registry: ResourceRegistry, rel: str) -> dict[str, Any] | None:
    parts = rel.strip("/").split("/")
    if len(parts) == 2 and parts[0] == "api":
        group, version = "", parts[1]
    elif len(parts) == 3 and parts[0] == "apis":
        group, version = parts[1], parts[2]
    else:
        return None
    if not registry.in_group_version(group, version):
        return None
    return _gv_document(registry, group, version)
