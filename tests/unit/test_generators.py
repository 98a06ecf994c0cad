"""Mounted ConfigMaps and Secrets are named by content, and every reference to them follows."""

from __future__ import annotations

import copy
from typing import Any

from orchestrator.render.generators import (
    GENERATED_FROM,
    NAME_SUFFIX_HASH,
    content_suffix,
    name_by_content,
    references,
)
from orchestrator.render.manifests import content_hash


def config_map(name: str, data: dict[str, str], **annotations: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "ns"}
    if annotations:
        meta["annotations"] = dict(annotations)
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


def secret(name: str, value: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": "ns"},
        "type": "Opaque",
        "stringData": {"KEY": value},
    }


def deployment() -> dict[str, Any]:
    container = {
        "name": "app",
        "image": "app:1",
        "envFrom": [{"configMapRef": {"name": "env"}}, {"secretRef": {"name": "keys"}}],
        "env": [
            {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "a"}}},
            {"name": "B", "valueFrom": {"secretKeyRef": {"name": "keys", "key": "KEY"}}},
            {"name": "C", "value": "plain"},
        ],
    }
    volumes = [
        {"name": "files", "configMap": {"name": "files"}},
        {"name": "certs", "secret": {"secretName": "certs"}},
        {
            "name": "both",
            "projected": {"sources": [{"configMap": {"name": "settings"}}, {"secret": {"name": "certs"}}]},
        },
        {"name": "scratch", "emptyDir": {}},
    ]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "app", "namespace": "ns"},
        "spec": {
            "template": {
                "spec": {
                    "containers": [container],
                    "initContainers": [copy.deepcopy(container)],
                    "volumes": volumes,
                }
            }
        },
    }


def a_set() -> list[dict[str, Any]]:
    return [
        config_map("env", {"LOG": "info"}),
        config_map("settings", {"a": "1"}),
        config_map("files", {"app.conf": "x=1"}),
        config_map("unmounted", {"k": "v"}),
        config_map("by-name", {"k": "v"}, **{NAME_SUFFIX_HASH: "false"}),
        secret("keys", "s3cret"),
        secret("certs", "pem"),
        deployment(),
    ]


def names(objects: list[dict[str, Any]]) -> dict[str, str]:
    return {
        o["metadata"].get("annotations", {}).get(GENERATED_FROM, o["metadata"]["name"]): o["metadata"]["name"]
        for o in objects
    }


def test_every_kind_of_reference_is_found() -> None:
    assert references(deployment()) == {
        ("ConfigMap", "env"),
        ("ConfigMap", "settings"),
        ("ConfigMap", "files"),
        ("Secret", "keys"),
        ("Secret", "certs"),
    }


def test_mounted_objects_are_renamed_by_content_and_references_follow() -> None:
    objects = name_by_content(a_set())
    renamed = names(objects)
    for name in ("env", "settings", "files", "keys", "certs"):
        assert renamed[name] != name and renamed[name].startswith(name + "-")
        assert len(renamed[name]) == len(name) + 11
    assert renamed["unmounted"] == "unmounted"  # nothing mounts it: its name is what others know it by
    assert renamed["by-name"] == "by-name"  # opted out
    (workload,) = [o for o in objects if o["kind"] == "Deployment"]
    assert references(workload) == {
        ("ConfigMap", renamed["env"]),
        ("ConfigMap", renamed["settings"]),
        ("ConfigMap", renamed["files"]),
        ("Secret", renamed["keys"]),
        ("Secret", renamed["certs"]),
    }
    init = workload["spec"]["template"]["spec"]["initContainers"][0]
    assert init["envFrom"][0]["configMapRef"]["name"] == renamed["env"]
    assert [o["metadata"]["name"] for o in objects if o["kind"] == "ConfigMap"] == sorted(
        o["metadata"]["name"] for o in objects if o["kind"] == "ConfigMap"
    )  # still in dependency (then name) order


def test_the_suffix_follows_the_content_only_and_is_deterministic() -> None:
    first, again = name_by_content(a_set()), name_by_content(a_set())
    assert content_hash(first) == content_hash(again)
    changed = a_set()
    changed[1]["data"] = {"a": "2"}
    renamed = names(name_by_content(changed))
    assert renamed["settings"] != names(first)["settings"]
    assert renamed["env"] == names(first)["env"]  # the others keep their names
    relabelled = config_map("settings", {"a": "1"})
    relabelled["metadata"]["labels"] = {"team": "x"}
    assert content_suffix(relabelled) == content_suffix(config_map("settings", {"a": "1"}))


def test_a_set_without_config_maps_is_returned_untouched() -> None:
    objects = [deployment()]
    assert name_by_content(objects) is objects
    assert objects == [deployment()]
