"""The schemas of the OpenAPI v3 documents the sim serves, as a real API server has them.

`kubectl explain deployment.spec.replicas` walks these (following `$ref`s into `components.schemas`), and
kubectl's client-side apply reads their patch strategies (`x-kubernetes-patch-merge-key`). They are built
from the schemas the project already ships for validation: kubernetes-validate's for the built-in kinds
(rewritten from its JSON Schema dialect into OpenAPI 3.0: `#/$defs/` references become
`#/components/schemas/`, a `["integer", "null"]` type becomes `integer`) and the Istio CRD schemas in
`orchestrator/render/schemas/istio/`, read as data files (the sim does not import the render layer).
"""

from __future__ import annotations

import json
from functools import cache
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from orchestrator.sim.resources import ResourceType

Schema = dict[str, Any]

_ISTIO_DIR = Path(__file__).resolve().parent.parent / "render" / "schemas" / "istio"
_OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_REF_PREFIX = "#/components/schemas/"
# Types kubernetes-validate spells as a oneOf, and the form a real API server's OpenAPI v3 gives them.
_SPECIAL: dict[str, Schema] = {
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {"type": "string", "format": "int-or-string"},
    "io.k8s.apimachinery.pkg.api.resource.Quantity": {"type": "string"},
}


@cache
def _kubernetes_definitions(kube_version: str) -> dict[str, Schema]:
    """kubernetes-validate's definitions for the Kubernetes version the sim reports (e.g. "1.30")."""
    spec = find_spec("kubernetes_validate")  # located, not imported: the module pulls in jsonschema
    if spec is None or spec.origin is None:
        return {}
    path = Path(spec.origin).resolve().parent / "kubernetes-json-schema" / f"v{kube_version}.0-local"
    if not (path / "_definitions.json").is_file():
        return {}
    with (path / "_definitions.json").open(encoding="utf-8") as handle:
        definitions: dict[str, Schema] = json.load(handle)["$defs"]
    return definitions


def _to_openapi(node: Any) -> Any:
    """kubernetes-validate's JSON Schema → an OpenAPI 3.0 schema object."""
    if isinstance(node, list):
        return [_to_openapi(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: Schema = {}
    for key, value in node.items():
        if key == "$ref" and isinstance(value, str):
            out[key] = _REF_PREFIX + value.split("/")[-1].removesuffix("#")
        elif key == "type" and isinstance(value, list):
            types = [t for t in value if t != "null"]
            out[key] = types[0] if len(types) == 1 else types
        elif key == "properties" and isinstance(value, dict):
            out[key] = {name: _to_openapi(sub) for name, sub in value.items()}
        else:
            out[key] = _to_openapi(value)
    if "$ref" in out and len(out) > 1:
        # OpenAPI 3.0 ignores a $ref's siblings; the API server wraps it so a field keeps its description.
        out["allOf"] = [{"$ref": out.pop("$ref")}]
    return out


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"].removeprefix(_REF_PREFIX)} if isinstance(node.get("$ref"), str) else set()
        for value in node.values():
            found |= _refs(value)
        return found
    if isinstance(node, list):
        return set().union(*(_refs(item) for item in node)) if node else set()
    return set()


def _kubernetes_schema(definitions: dict[str, Schema], name: str) -> Schema:
    if name in _SPECIAL:
        description = definitions.get(name, {}).get("description")
        return {**({"description": description} if description else {}), **_SPECIAL[name]}
    converted: Schema = _to_openapi(definitions[name])
    return converted


def schema_name(rt: ResourceType, version: str) -> str:
    """The component name a real API server gives the kind: `io.k8s.api.apps.v1.Deployment`, and for a
    custom resource the reversed group: `io.istio.networking.v1.VirtualService`."""
    if rt.custom:
        return ".".join([*reversed(rt.group.split(".")), version, rt.kind])
    return f"io.k8s.api.{rt.group or 'core'}.{version}.{rt.kind}"


def _istio_schema(rt: ResourceType, version: str) -> Schema | None:
    path = _ISTIO_DIR / rt.group / version / f"{rt.kind}.json"
    if not path.is_file():
        return None
    with path.open(encoding="utf-8") as handle:
        raw: Schema = json.load(handle)
    schema: Schema = _to_openapi(raw)
    schema["properties"]["metadata"] = {
        "description": "Standard object's metadata.",
        "allOf": [{"$ref": _REF_PREFIX + _OBJECT_META}],
    }
    return schema


def kind_schemas(types: list[ResourceType], version: str, kube_version: str) -> dict[str, Schema]:
    """`components.schemas` for the kinds of one group-version: each kind's schema (marked with its
    x-kubernetes-group-version-kind, which kubectl looks kinds up by) and every schema they refer to."""
    definitions = _kubernetes_definitions(kube_version)
    schemas: dict[str, Schema] = {}
    for rt in types:
        name = schema_name(rt, version)
        gvk = {"group": rt.group, "version": version, "kind": rt.kind}
        found = _istio_schema(rt, version) if rt.custom else None
        if not rt.custom and name in definitions:
            found = _kubernetes_schema(definitions, name)
        if found is None:  # a kind without a shipped schema: any fields, as for a CRD without one
            found = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        schemas[name] = {**found, "x-kubernetes-group-version-kind": [gvk]}
    pending = sorted(set().union(*(_refs(s) for s in schemas.values())) - set(schemas)) if schemas else []
    while pending:
        name = pending.pop()
        if name in schemas or name not in definitions:
            continue
        schemas[name] = _kubernetes_schema(definitions, name)
        pending.extend(sorted(_refs(schemas[name]) - set(schemas)))
    return schemas
