"""Schema validation of rendered manifests: what passes, and how what fails is reported."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from types import MappingProxyType
from typing import Any

import jsonschema
import pytest
from ruamel.yaml import YAML

from orchestrator.render import validate
from orchestrator.render.validate import (
    KUBERNETES_VERSION,
    SchemaViolation,
    known_kinds,
    validate_manifest,
)

DIGEST = "sha256:" + "a" * 64


def deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "api",
            "namespace": "shop",
            "labels": {"app": "api", "app.kubernetes.io/version": "1.2.3"},
        },
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "api"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
            "template": {
                "metadata": {
                    "labels": {"app": "api", "version": "stable"},
                    "annotations": {"sidecar.istio.io/inject": "true"},
                },
                "spec": {
                    "serviceAccountName": "api",
                    "containers": [
                        {
                            "name": "api",
                            "image": f"registry.local/api@{DIGEST}",
                            "ports": [{"containerPort": 8080, "name": "http"}],
                            "env": [
                                {"name": "LOG_LEVEL", "value": "info"},
                                {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                            ],
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "128Mi"},
                                "limits": {"cpu": 1, "memory": "256Mi"},
                            },
                            "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}},
                            "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
                        }
                    ],
                },
            },
        },
    }


def service() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "api", "namespace": "shop", "labels": {"app": "api"}},
        "spec": {
            "type": "ClusterIP",
            "selector": {"app": "api"},
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def hpa() -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "api", "namespace": "shop"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "api"},
            "minReplicas": 2,
            "maxReplicas": 10,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
                }
            ],
            "behavior": {
                "scaleDown": {
                    "stabilizationWindowSeconds": 300,
                    "policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}],
                }
            },
        },
    }


def pdb() -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "api", "namespace": "shop"},
        "spec": {"minAvailable": "50%", "selector": {"matchLabels": {"app": "api"}}},
    }


def service_account() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "api", "namespace": "shop"}}


def config_map() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "api-config", "namespace": "shop"},
        "data": {"LOG_LEVEL": "info", "settings.json": '{"a": 1}'},
    }


def namespace() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "shop", "labels": {"istio-injection": "enabled"}},
    }


def gateway(version: str = "v1") -> dict[str, Any]:
    return {
        "apiVersion": f"networking.istio.io/{version}",
        "kind": "Gateway",
        "metadata": {"name": "public", "namespace": "istio-system"},
        "spec": {
            "selector": {"istio": "ingressgateway"},
            "servers": [
                {
                    "port": {"number": 443, "name": "https", "protocol": "HTTPS"},
                    "hosts": ["api.example.com"],
                    "tls": {"mode": "SIMPLE", "credentialName": "api-cert"},
                }
            ],
        },
    }


def virtual_service(version: str = "v1") -> dict[str, Any]:
    return {
        "apiVersion": f"networking.istio.io/{version}",
        "kind": "VirtualService",
        "metadata": {"name": "api", "namespace": "shop"},
        "spec": {
            "hosts": ["api.shop.svc.cluster.local", "api.example.com"],
            "gateways": ["istio-system/public", "mesh"],
            "http": [
                {
                    "name": "canary-by-header",
                    "match": [{"headers": {"x-canary": {"exact": "1"}}, "uri": {"prefix": "/"}}],
                    "route": [{"destination": {"host": "api", "subset": "canary"}}],
                },
                {
                    "name": "primary",
                    "route": [
                        {
                            "destination": {"host": "api", "subset": "stable", "port": {"number": 80}},
                            "weight": 90,
                        },
                        {"destination": {"host": "api", "subset": "canary"}, "weight": 10},
                    ],
                    "mirror": {"host": "api", "subset": "canary"},
                    "mirrorPercentage": {"value": 5.0},
                    "retries": {"attempts": 3, "perTryTimeout": "2s", "retryOn": "5xx,reset"},
                    "timeout": "10s",
                },
            ],
        },
    }


def destination_rule(version: str = "v1") -> dict[str, Any]:
    return {
        "apiVersion": f"networking.istio.io/{version}",
        "kind": "DestinationRule",
        "metadata": {"name": "api", "namespace": "shop"},
        "spec": {
            "host": "api",
            "trafficPolicy": {
                "tls": {"mode": "ISTIO_MUTUAL"},
                "connectionPool": {"http": {"http2MaxRequests": 100}},
                "outlierDetection": {"consecutive5xxErrors": 5, "interval": "30s", "baseEjectionTime": "60s"},
                "loadBalancer": {"simple": "LEAST_REQUEST"},
            },
            "subsets": [
                {"name": "stable", "labels": {"version": "stable"}},
                {"name": "canary", "labels": {"version": "canary"}},
            ],
        },
    }


def service_entry(version: str = "v1") -> dict[str, Any]:
    return {
        "apiVersion": f"networking.istio.io/{version}",
        "kind": "ServiceEntry",
        "metadata": {"name": "payments-api", "namespace": "shop"},
        "spec": {
            "hosts": ["payments.example.com"],
            "location": "MESH_EXTERNAL",
            "ports": [{"number": 443, "name": "https", "protocol": "TLS"}],
            "resolution": "DNS",
        },
    }


def peer_authentication(version: str = "v1") -> dict[str, Any]:
    return {
        "apiVersion": f"security.istio.io/{version}",
        "kind": "PeerAuthentication",
        "metadata": {"name": "api", "namespace": "shop"},
        "spec": {
            "selector": {"matchLabels": {"app": "api"}},
            "mtls": {"mode": "STRICT"},
            "portLevelMtls": {"9090": {"mode": "PERMISSIVE"}},
        },
    }


def request_authentication(version: str = "v1") -> dict[str, Any]:
    return {
        "apiVersion": f"security.istio.io/{version}",
        "kind": "RequestAuthentication",
        "metadata": {"name": "api", "namespace": "shop"},
        "spec": {
            "selector": {"matchLabels": {"app": "api"}},
            "jwtRules": [
                {
                    "issuer": "https://issuer.example.com",
                    "jwksUri": "https://issuer.example.com/.well-known/jwks.json",
                    "forwardOriginalToken": True,
                }
            ],
        },
    }


def authorization_policy(version: str = "v1") -> dict[str, Any]:
    return {
        "apiVersion": f"security.istio.io/{version}",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": "api", "namespace": "shop"},
        "spec": {
            "selector": {"matchLabels": {"app": "api"}},
            "action": "ALLOW",
            "rules": [
                {
                    "from": [{"source": {"principals": ["cluster.local/ns/shop/sa/web"]}}],
                    "to": [{"operation": {"methods": ["GET", "POST"], "paths": ["/api/*"]}}],
                    "when": [{"key": "request.headers[x-tenant]", "values": ["acme"]}],
                }
            ],
        },
    }


KUBERNETES_SAMPLES = [deployment, service, hpa, pdb, service_account, config_map, namespace]
ISTIO_SAMPLES = [
    gateway,
    virtual_service,
    destination_rule,
    service_entry,
    peer_authentication,
    request_authentication,
    authorization_policy,
]


def all_samples() -> list[dict[str, Any]]:
    samples = [make() for make in KUBERNETES_SAMPLES]
    for make in ISTIO_SAMPLES:
        samples.extend([make("v1"), make("v1beta1")])
    return samples


def sample_id(obj: dict[str, Any]) -> str:
    return f"{obj['apiVersion']}/{obj['kind']}"


def fields(violations: list[SchemaViolation]) -> list[str]:
    return [v.field for v in violations]


# --- valid manifests pass ---------------------------------------------------------------------------


@pytest.mark.parametrize("obj", all_samples(), ids=sample_id)
def test_a_valid_manifest_has_no_violations(obj: dict[str, Any]) -> None:
    assert validate_manifest(obj) == []


def test_nullable_istio_fields_accept_null() -> None:
    obj = virtual_service()
    obj["spec"]["exportTo"] = None
    obj["spec"]["http"][1]["retries"]["perTryTimeout"] = None
    assert validate_manifest(obj) == []


def test_int_or_string_fields_take_either() -> None:
    obj = deployment()
    obj["spec"]["strategy"]["rollingUpdate"] = {"maxSurge": 1, "maxUnavailable": "10%"}
    assert validate_manifest(obj) == []


def test_yaml_loaded_with_ruamel_round_trip_is_validated_like_plain_dicts() -> None:
    text = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
spec:
  replicas: three
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers: [{name: api, image: "api:1"}]
"""
    obj = YAML().load(text)
    assert fields(validate_manifest(obj)) == ["spec.replicas"]
    obj["spec"]["replicas"] = 2
    assert validate_manifest(obj) == []


def test_any_mapping_is_accepted() -> None:
    assert validate_manifest(MappingProxyType(service_account())) == []


def test_keys_yaml_reads_as_numbers_are_checked_as_the_json_sent() -> None:
    # jsonschema-rs takes string keys only; `1: x` under data is "1" once sent as JSON, a valid key.
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {1: "x", 2.5: "y"}}
    assert validate_manifest(obj) == []


def test_a_value_json_cannot_carry_is_named() -> None:
    obj = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c"},
        "data": {"day": date(2026, 1, 1)},
    }
    assert fields(validate_manifest(obj)) == ["data.day"]


# --- what fails, and how it is named -----------------------------------------------------------------


def test_replicas_as_a_word_names_spec_replicas() -> None:
    obj = deployment()
    obj["spec"]["replicas"] = "three"
    (violation,) = validate_manifest(obj)
    assert violation == SchemaViolation(
        "apps/v1", "Deployment", "api", "spec.replicas", "'three' is not of type 'integer'"
    )
    assert str(violation) == "Deployment/api: spec.replicas: 'three' is not of type 'integer'"


def test_replicas_beyond_int32_is_an_error() -> None:
    obj = deployment()
    obj["spec"]["replicas"] = 2**31
    (violation,) = validate_manifest(obj)
    assert violation.field == "spec.replicas"
    assert "maximum" in violation.message


def test_a_boolean_is_not_an_integer() -> None:
    obj = deployment()
    obj["spec"]["replicas"] = True
    assert fields(validate_manifest(obj)) == ["spec.replicas"]


def test_an_unknown_kubernetes_field_is_an_error_with_a_suggestion() -> None:
    obj = deployment()
    obj["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Always"
    (violation,) = validate_manifest(obj)
    assert violation.field == "spec.template.spec.containers[0].imagePullPolcy"
    assert violation.message == "unknown field 'imagePullPolcy'; did you mean 'imagePullPolicy'?"


def test_an_unknown_top_level_or_metadata_field_is_an_error() -> None:
    obj = service()
    obj["metdata"] = {}
    obj["metadata"]["label"] = {"app": "api"}
    assert fields(validate_manifest(obj)) == ["metadata.label", "metdata"]


def test_an_unknown_istio_field_in_spec_is_an_error() -> None:
    obj = virtual_service()
    obj["spec"]["http"][0]["rout"] = obj["spec"]["http"][0].pop("route")
    (violation,) = validate_manifest(obj)
    assert violation.field == "spec.http[0].rout"
    assert violation.message == "unknown field 'rout'; did you mean 'route'?"
    assert (
        str(violation) == "VirtualService/api: spec.http[0].rout: unknown field 'rout'; did you mean 'route'?"
    )


def test_an_unknown_field_deep_in_a_destination_rule_is_an_error() -> None:
    obj = destination_rule("v1beta1")
    obj["spec"]["subsets"][1]["trafficPolicy"] = {"tls": {"mode": "ISTIO_MUTUAL", "sni": "x", "snii": "y"}}
    assert fields(validate_manifest(obj)) == ["spec.subsets[1].trafficPolicy.tls.snii"]


def test_a_wrong_type_in_an_istio_spec_names_the_field() -> None:
    obj = virtual_service()
    obj["spec"]["http"][1]["route"][0]["weight"] = "sixty"
    (violation,) = validate_manifest(obj)
    assert violation.field == "spec.http[1].route[0].weight"
    assert violation.message == "'sixty' is not of type 'integer'"


def test_a_wrong_enum_value_in_an_istio_spec_lists_the_allowed_ones() -> None:
    obj = peer_authentication()
    obj["spec"]["mtls"]["mode"] = "STRICTEST"
    (violation,) = validate_manifest(obj)
    assert violation.field == "spec.mtls.mode"
    assert violation.message.startswith("'STRICTEST' is not one of ")
    assert "'STRICT'" in violation.message and "'PERMISSIVE'" in violation.message


def test_two_ways_to_match_one_uri_is_an_error() -> None:
    obj = virtual_service()
    obj["spec"]["http"][0]["match"][0]["uri"] = {"prefix": "/", "exact": "/api"}
    (violation,) = validate_manifest(obj)
    assert violation.field == "spec.http[0].match[0].uri"
    assert violation.message == "set at most one of: exact, prefix, regex"


def test_a_missing_required_field_names_the_field() -> None:
    obj = deployment()
    del obj["spec"]["selector"]
    del obj["spec"]["template"]["spec"]["containers"][0]["name"]
    assert fields(validate_manifest(obj)) == [
        "spec.selector",
        "spec.template.spec.containers[0].name",
    ]
    assert {v.message for v in validate_manifest(obj)} == {"required field is missing"}


def test_a_missing_required_field_in_istio_specs_names_the_field() -> None:
    rule = destination_rule()
    del rule["spec"]["host"]
    del rule["spec"]["subsets"][1]["name"]
    assert fields(validate_manifest(rule)) == ["spec.host", "spec.subsets[1].name"]
    routes = virtual_service("v1beta1")
    del routes["spec"]["http"][1]["route"][0]["destination"]["host"]
    assert fields(validate_manifest(routes)) == ["spec.http[1].route[0].destination.host"]


def test_fields_added_by_newer_istio_are_known() -> None:
    routes = virtual_service()
    routes["spec"]["http"][1]["mirrors"] = [
        {"destination": {"host": "api", "subset": "canary"}, "percentage": {"value": 10.0}}
    ]
    routes["spec"]["http"][1]["retries"]["backoff"] = "25ms"
    assert validate_manifest(routes) == []
    policy = authorization_policy()
    policy["spec"]["targetRefs"] = [{"kind": "Gateway", "group": "gateway.networking.k8s.io", "name": "web"}]
    assert validate_manifest(policy) == []
    policy["spec"]["targetRefs"][0]["nmae"] = "typo"
    del policy["spec"]["targetRefs"][0]["name"]
    assert fields(validate_manifest(policy)) == ["spec.targetRefs[0].name", "spec.targetRefs[0].nmae"]


def test_a_missing_required_field_in_an_hpa() -> None:
    obj = hpa()
    del obj["spec"]["scaleTargetRef"]["name"]
    assert fields(validate_manifest(obj)) == ["spec.scaleTargetRef.name"]


def test_every_error_is_listed_not_only_the_first() -> None:
    obj = deployment()
    obj["spec"]["replicas"] = "three"
    obj["spec"]["paused"] = "no"
    obj["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "8080"
    obj["spec"]["template"]["spec"]["bogus"] = 1
    assert fields(validate_manifest(obj)) == [
        "spec.paused",
        "spec.replicas",
        "spec.template.spec.bogus",
        "spec.template.spec.containers[0].ports[0].containerPort",
    ]


def test_an_int_or_string_field_rejects_a_fraction() -> None:
    obj = pdb()
    obj["spec"]["minAvailable"] = 1.5
    (violation,) = validate_manifest(obj)
    assert violation.field == "spec.minAvailable"
    assert violation.message == "1.5 is not of type 'string' or 'integer'"


def test_secret_data_must_be_base64() -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db"},
        "data": {"password": "c2VjcmV0", "token": "not base64!"},
    }
    (violation,) = validate_manifest(secret)
    assert violation.field == "data.token"
    assert violation.message == "'not base64!' is not base64-encoded bytes"


def test_an_unknown_kind_is_a_violation_not_a_pass() -> None:
    obj = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {}}
    (violation,) = validate_manifest(obj)
    assert violation.field == ""
    assert violation.message == "no schema for Widget in example.com/v1"
    assert str(violation) == "Widget/w: no schema for Widget in example.com/v1"


def test_a_known_kind_in_the_wrong_api_version_says_where_it_is_known() -> None:
    obj = deployment()
    obj["apiVersion"] = "apps/v1beta1"
    (violation,) = validate_manifest(obj)
    assert violation.message == "no schema for Deployment in apps/v1beta1; Deployment is known in apps/v1"


def test_missing_api_version_and_kind_are_reported() -> None:
    violations = validate_manifest({"metadata": {"name": "x"}})
    assert fields(violations) == ["apiVersion", "kind"]


def test_a_non_mapping_is_reported() -> None:
    (violation,) = validate_manifest(["not", "a", "manifest"])  # type: ignore[arg-type]
    assert violation.message == "a manifest must be a mapping, not list"


# --- names and labels --------------------------------------------------------------------------------


def test_metadata_name_is_required() -> None:
    obj = deployment()
    del obj["metadata"]["name"]
    assert validate_manifest(obj) == [
        SchemaViolation("apps/v1", "Deployment", "", "metadata.name", "required field is missing")
    ]
    assert validate_manifest({"apiVersion": "v1", "kind": "ConfigMap"})[0].field == "metadata.name"


@pytest.mark.parametrize("name", ["API", "api_server", "-api", "api-", "a" * 254, "api..v2", ""])
def test_a_name_that_is_not_a_dns_1123_subdomain_is_an_error(name: str) -> None:
    obj = config_map()
    obj["metadata"]["name"] = name
    (violation,) = validate_manifest(obj)
    assert violation.field == "metadata.name"


@pytest.mark.parametrize("name", ["api", "api-v2", "api.v2", "1api", "a" * 253])
def test_dns_1123_subdomains_are_valid_names(name: str) -> None:
    obj = config_map()
    obj["metadata"]["name"] = name
    assert validate_manifest(obj) == []


def test_a_service_name_must_be_a_dns_1035_label() -> None:
    obj = service()
    obj["metadata"]["name"] = "1api"
    (violation,) = validate_manifest(obj)
    assert violation.field == "metadata.name"
    assert "DNS-1035 label" in violation.message
    obj["metadata"]["name"] = "api.v2"
    assert fields(validate_manifest(obj)) == ["metadata.name"]


def test_rbac_names_need_only_be_path_segments() -> None:
    role: dict[str, Any] = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "system:addtocloud:reader"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}],
    }
    assert validate_manifest(role) == []
    role["metadata"]["name"] = "a/b"
    assert fields(validate_manifest(role)) == ["metadata.name"]


def test_a_namespace_must_be_a_dns_1123_label() -> None:
    obj = deployment()
    obj["metadata"]["namespace"] = "shop.eu"
    assert fields(validate_manifest(obj)) == ["metadata.namespace"]


def test_label_keys_and_values_follow_kubernetes_rules() -> None:
    obj = deployment()
    obj["metadata"]["labels"]["version"] = "1.2.3+build.7"
    obj["metadata"]["labels"]["bad key!"] = "x"
    violations = validate_manifest(obj)
    assert fields(violations) == ["metadata.labels.version", 'metadata.labels["bad key!"]']
    # a valid value seen before stays valid, an invalid one stays invalid
    again = deployment()
    again["metadata"]["labels"]["version"] = "1.2.3+build.7"
    assert fields(validate_manifest(again)) == ["metadata.labels.version"]


# --- the catalogue ------------------------------------------------------------------------------------


def test_known_kinds_cover_what_we_render() -> None:
    kinds = set(known_kinds())
    expected = {
        ("apps/v1", "Deployment"),
        ("v1", "Service"),
        ("v1", "ServiceAccount"),
        ("v1", "ConfigMap"),
        ("v1", "Namespace"),
        ("v1", "Secret"),
        ("apps/v1", "StatefulSet"),
        ("autoscaling/v2", "HorizontalPodAutoscaler"),
        ("policy/v1", "PodDisruptionBudget"),
    }
    for group in ("networking.istio.io", "security.istio.io"):
        names = ISTIO_SAMPLES[:4] if group.startswith("networking") else ISTIO_SAMPLES[4:]
        for version in ("v1", "v1beta1"):
            expected |= {(f"{group}/{version}", make(version)["kind"]) for make in names}
    assert expected <= kinds
    assert known_kinds() == sorted(known_kinds())
    assert KUBERNETES_VERSION.count(".") == 1


def test_every_shipped_istio_schema_names_its_own_api_version() -> None:
    root = Path(validate.__file__).parent / "schemas" / "istio"
    files = sorted(root.glob("*/*/*.json"))
    assert len(files) == 14
    for path in files:
        schema = json.loads(path.read_text())
        api_version = f"{path.parent.parent.name}/{path.parent.name}"
        assert schema["properties"]["apiVersion"]["enum"] == [api_version], path
        assert schema["properties"]["kind"]["enum"] == [path.stem], path


# --- the fast check agrees with jsonschema -------------------------------------------------------------


def test_recursive_schemas_are_checked_at_any_depth() -> None:
    """A CRD's openAPIV3Schema is JSONSchemaProps all the way down: a definition that refers to itself."""
    deep: dict[str, Any] = {"type": "object", "properties": {"size": {"type": "integer", "minimum": 1}}}
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "names": {"kind": "Widget", "plural": "widgets"},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {"spec": {"type": "object", "properties": {"inner": deep}}},
                        }
                    },
                }
            ],
        },
    }
    assert validate_manifest(crd) == []
    deep["properties"]["size"]["minimum"] = "one"
    props = "spec.versions[0].schema.openAPIV3Schema.properties.spec.properties.inner.properties.size"
    assert fields(validate_manifest(crd)) == [f"{props}.minimum"]


def test_unique_items_is_checked_by_the_fast_validator() -> None:
    schema = {"type": "object", "properties": {"ids": {"type": "array", "uniqueItems": True}}}
    checker = validate._KindChecker(schema)
    assert checker.is_valid({"ids": [1, 2]})
    assert not checker.is_valid({"ids": [1, 1]})


WRONG_VALUES: list[Any] = ["x", 7, 2.5, True, None, [], {}, [1], {"k": 1}]


def mutations(obj: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """Every (path, replacement) that swaps one node for a value of another type, or adds a key."""
    for wrong in WRONG_VALUES:
        if path and type(wrong) is not type(obj):
            yield path, wrong
    if isinstance(obj, dict):
        yield (*path, "zzUnknown"), "x"
        for key, value in obj.items():
            yield from mutations(value, (*path, key))
    elif isinstance(obj, list):
        for index, value in enumerate(obj):
            yield from mutations(value, (*path, index))


def mutated(obj: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    copied = copy.deepcopy(obj)
    node = copied
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return copied


@pytest.mark.parametrize("obj", all_samples(), ids=sample_id)
def test_the_compiled_check_agrees_with_jsonschema(obj: dict[str, Any]) -> None:
    """The fast closures decide pass/fail; jsonschema is the reference they must match exactly."""
    checker = validate._checker(obj["apiVersion"], obj["kind"])
    assert checker is not None
    reference = jsonschema.Draft7Validator(checker._schema, format_checker=validate._format_checker())
    checked = 0
    for path, value in mutations(obj):
        candidate = mutated(obj, path, value)
        assert checker.is_valid(candidate) == reference.is_valid(candidate), (path, value)
        checked += 1
    assert checked >= 30
