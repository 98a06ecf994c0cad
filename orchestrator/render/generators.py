"""ConfigMaps and Secrets a release's pods read, named after their content (kustomize's generators).

A ConfigMap that the stable and the canary pods both read by one name cannot be both versions' config:
applying the new release's would change what the stable pods read, and a rollback would have to put the
old content back. So, like kustomize's configMapGenerator and secretGenerator, each ConfigMap or Secret
that a pod template of the set refers to (a volume, a projected volume, `envFrom`, `env[].valueFrom`) is
renamed `<name>-<hash of its content, 10 characters>`, and every reference in the set's pod templates is
rewritten to match. A new content is a new object: canary pods read it, stable pods keep reading theirs,
a rollback has nothing to restore, and the old object is pruned once no release uses it.

The suffix depends only on the object's content, so the rendered set and its manifest hash stay
deterministic. A ConfigMap or Secret nothing in the set mounts keeps its name, and so does one annotated
`addtocloud.io/name-suffix-hash: "false"` (kustomize's `disableNameSuffixHash`), for objects read by name
from outside the set.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

from orchestrator.render.manifests import Manifest, object_key

HASHED_KINDS = ("ConfigMap", "Secret")
GENERATED_FROM = "addtocloud.io/generated-from"  # on a renamed object: the name the template gave it
NAME_SUFFIX_HASH = "addtocloud.io/name-suffix-hash"  # "false": keep the template's name
SUFFIX_LENGTH = 10
_CONTENT_FIELDS = ("kind", "type", "immutable", "data", "binaryData", "stringData")

Ref = tuple[str, str]  # (kind, name)


def content_suffix(obj: Manifest) -> str:
    """The hash of what a ConfigMap or Secret holds (not its metadata): its name suffix."""
    content = {key: obj[key] for key in _CONTENT_FIELDS if key in obj}
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:SUFFIX_LENGTH]


def pod_spec(obj: Manifest) -> dict[str, Any] | None:
    """The pod spec a workload object creates pods from (None for other kinds)."""
    kind = obj.get("kind")
    spec = obj.get("spec") or {}
    if kind == "Pod":
        return spec if isinstance(spec, dict) else None
    if not isinstance(spec, dict):
        return None
    if kind == "CronJob":
        job = spec.get("jobTemplate")
        spec = (job.get("spec") if isinstance(job, dict) else None) or {}
    elif kind not in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        return None
    template = spec.get("template") if isinstance(spec, dict) else None
    found = template.get("spec") if isinstance(template, dict) else None
    return found if isinstance(found, dict) else None


def _slots(spec: dict[str, Any]) -> Iterator[tuple[dict[str, Any], str, str]]:
    """Every place a pod spec names a ConfigMap or Secret: (the mapping, its key holding the name, kind)."""
    for volume in _dicts(spec.get("volumes")):
        if isinstance(volume.get("configMap"), dict):
            yield volume["configMap"], "name", "ConfigMap"
        if isinstance(volume.get("secret"), dict):
            yield volume["secret"], "secretName", "Secret"
        projected = volume.get("projected")
        for source in _dicts(projected.get("sources") if isinstance(projected, dict) else None):
            if isinstance(source.get("configMap"), dict):
                yield source["configMap"], "name", "ConfigMap"
            if isinstance(source.get("secret"), dict):
                yield source["secret"], "name", "Secret"
    for group in ("initContainers", "containers", "ephemeralContainers"):
        for container in _dicts(spec.get(group)):
            for source in _dicts(container.get("envFrom")):
                if isinstance(source.get("configMapRef"), dict):
                    yield source["configMapRef"], "name", "ConfigMap"
                if isinstance(source.get("secretRef"), dict):
                    yield source["secretRef"], "name", "Secret"
            for variable in _dicts(container.get("env")):
                value_from = variable.get("valueFrom")
                if not isinstance(value_from, dict):
                    continue
                if isinstance(value_from.get("configMapKeyRef"), dict):
                    yield value_from["configMapKeyRef"], "name", "ConfigMap"
                if isinstance(value_from.get("secretKeyRef"), dict):
                    yield value_from["secretKeyRef"], "name", "Secret"


def _dicts(items: Any) -> list[dict[str, Any]]:
    """The mappings of a list from a template (validation, later, names anything malformed)."""
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def references(obj: Manifest) -> set[Ref]:
    """The ConfigMaps and Secrets the pods of a workload object read (empty for other kinds)."""
    spec = pod_spec(obj)
    if spec is None:
        return set()
    return {(kind, str(slot[key])) for slot, key, kind in _slots(spec) if slot.get(key)}


def is_generated(obj: Manifest) -> bool:
    return GENERATED_FROM in ((obj.get("metadata") or {}).get("annotations") or {})


def name_by_content(objects: list[Manifest]) -> list[Manifest]:
    """Rename the set's mounted ConfigMaps and Secrets by content and rewrite the references to them.

    Objects are changed in place (a rendered set's objects are fresh from the templates); the list is
    returned in dependency order again, since names changed.
    """
    if not any(obj.get("kind") in HASHED_KINDS for obj in objects):
        return objects  # the common case: nothing to do, nothing walked
    mounted: set[Ref] = set()
    for obj in objects:
        mounted |= references(obj)
    renames: dict[Ref, str] = {}
    for obj in objects:
        meta = obj.get("metadata") or {}
        ref = (str(obj.get("kind")), str(meta.get("name")))
        annotations = meta.get("annotations") or {}
        if ref not in mounted or str(annotations.get(NAME_SUFFIX_HASH, "true")).lower() == "false":
            continue
        renames[ref] = f"{ref[1]}-{content_suffix(obj)}"
        meta["name"] = renames[ref]
        meta["annotations"] = {**annotations, GENERATED_FROM: ref[1]}
    if not renames:
        return objects
    for obj in objects:
        spec = pod_spec(obj)
        if spec is None:
            continue
        for slot, key, kind in _slots(spec):
            renamed = renames.get((kind, str(slot.get(key))))
            if renamed is not None:
                slot[key] = renamed
    return sorted(objects, key=object_key)
