"""Regenerate orchestrator/render/schemas/istio/ from the npm packages @kubernetes-models/istio.

A maintenance tool, never needed at run time: the JSON files it writes are committed. It needs node/npm.

Step 1, the base schema. Release 2.3.0 of the package (MIT licence) embeds each Istio CRD's
openAPIV3Schema as a JSON-compatible literal, `const schema = {...};`, in `<group>/<version>/<Kind>.js`.
It is the newest release that does (3.x ships precompiled validators without the schema); it was
generated from Istio 1.18.0's CRDs, which serve networking.istio.io v1alpha3/v1beta1 and
security.istio.io v1beta1 (+ v1 for two kinds). Istio generates every served version of a CRD from the
same protobuf, so all versions of one kind carry the same schema (checked below for the versions the
package has); the `v1` versions Istio 1.18 did not serve yet are written as the `v1beta1` schema with
the apiVersion enum changed.

Step 2, the fields Istio added since. Release 3.0.1 (generated from Istio 1.29.2) still ships TypeScript
declarations (`<group>/v1/<Kind>.d.ts`); ts-json-schema-generator turns them into JSON Schema. Where that
schema has a `spec` property the 1.18 schema lacks, the property is grafted in (its top node marked
`"x-addtocloud-source": "istio-1.29.2-typescript"`), and where its object lists a field as required in
every variant, the field is made required. Nothing the 1.18 schema already says is changed.

Usage:
    python scripts/extract_istio_schemas.py [--no-graft] [kubernetes-models-istio-2.3.0.tgz]
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

PACKAGE = "@kubernetes-models/istio"
VERSION = "2.3.0"
TYPES_VERSION = "3.0.1"  # generated from Istio 1.29.2
TYPES_TOOLS = ["ts-json-schema-generator@2.4.0", "typescript@7.0.2"]
GRAFT_MARK = {"x-addtocloud-source": "istio-1.29.2-typescript"}
OUT = Path(__file__).resolve().parent.parent / "orchestrator" / "render" / "schemas" / "istio"

WANTED: dict[str, list[str]] = {
    "networking.istio.io": ["VirtualService", "DestinationRule", "Gateway", "ServiceEntry"],
    "security.istio.io": ["PeerAuthentication", "RequestAuthentication", "AuthorizationPolicy"],
}
VERSIONS = ["v1beta1", "v1"]


def schema_from_module(source: str, where: str) -> dict[str, Any]:
    """Cut the `const schema = {...};` literal out of one generated module and parse it as JSON."""
    start_marker = "const schema = "
    start = source.find(start_marker)
    if start < 0:
        raise SystemExit(f"{where}: no `const schema = ` literal (a package version without schemas?)")
    end = source.find("\n};\n", start)
    if end < 0:
        raise SystemExit(f"{where}: the schema literal does not end with '}};'")
    literal = source[start + len(start_marker) : end + 2]
    try:
        parsed: dict[str, Any] = json.loads(literal)
    except json.JSONDecodeError as exc:
        raise SystemExit(f"{where}: the schema literal is not JSON: {exc}") from exc
    return parsed


def with_api_version(schema: dict[str, Any], api_version: str) -> dict[str, Any]:
    copy: dict[str, Any] = json.loads(json.dumps(schema))
    copy["properties"]["apiVersion"]["enum"] = [api_version]
    return copy


def without_api_version(schema: dict[str, Any]) -> dict[str, Any]:
    copy: dict[str, Any] = json.loads(json.dumps(schema))
    del copy["properties"]["apiVersion"]
    return copy


def fetch_tarball(workdir: Path) -> Path:
    subprocess.run(["npm", "pack", f"{PACKAGE}@{VERSION}"], cwd=workdir, check=True)
    (tarball,) = workdir.glob("*.tgz")
    return tarball


# --- step 2: graft what Istio 1.29.2 added, from its TypeScript declarations ---------------------------


def typescript_schemas(workdir: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """(group, kind) -> JSON Schema generated from @kubernetes-models/istio 3.0.1's v1 declarations."""
    project = workdir / "types"
    project.mkdir()
    (project / "package.json").write_text('{"name": "istio-types", "private": true}\n')
    packages = [*TYPES_TOOLS, f"{PACKAGE}@{TYPES_VERSION}"]
    subprocess.run(["npm", "install", "--no-audit", "--no-fund", *packages], cwd=project, check=True)
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    for group, kinds in WANTED.items():
        for kind in kinds:
            declarations = project / "node_modules" / PACKAGE / group / "v1" / f"{kind}.d.ts"
            output = project / f"{group}-{kind}.json"
            command = ["npx", "ts-json-schema-generator", "--path", str(declarations)]
            command += ["--type", f"I{kind}", "--no-type-check", "-o", str(output)]
            subprocess.run(command, cwd=project, check=True)
            generated = json.loads(output.read_text())
            schemas[(group, kind)] = resolve(generated, generated.get("definitions", {}))
    return schemas


def resolve(node: Any, definitions: dict[str, Any]) -> Any:
    """Inline the generator's `$ref`s (its declarations are not recursive below `spec`)."""
    if isinstance(node, list):
        return [resolve(item, definitions) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return resolve(definitions[node["$ref"].rsplit("/", 1)[-1]], definitions)
    return {key: resolve(value, definitions) for key, value in node.items() if key != "definitions"}


def variants(node: dict[str, Any]) -> list[dict[str, Any]]:
    """The object shapes a (possibly union) TypeScript-derived node allows."""
    branches = node.get("anyOf") or node.get("oneOf")
    if branches:
        return [shape for branch in branches for shape in variants(branch)]
    return [node]


def merged_properties(node: dict[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for shape in variants(node):
        for name, sub in shape.get("properties", {}).items():
            merged.setdefault(name, sub)
    return merged


def required_in_every_variant(node: dict[str, Any]) -> set[str]:
    shapes = variants(node)
    required = set(shapes[0].get("required", []))
    for shape in shapes[1:]:
        required &= set(shape.get("required", []))
    return required


def names_in_alternatives(node: dict[str, Any]) -> set[str]:
    """Field names that a node's oneOf/anyOf/not rules mention in a `required`."""
    names: set[str] = set()

    def collect(value: Any) -> None:
        if isinstance(value, dict):
            names.update(value.get("required", []))
            for key in ("oneOf", "anyOf", "allOf", "not"):
                if key in value:
                    collect(value[key])
        elif isinstance(value, list):
            for item in value:
                collect(item)

    for key in ("oneOf", "anyOf", "allOf", "not"):
        if key in node:
            collect(node[key])
    return names


def as_plain_schema(node: dict[str, Any]) -> dict[str, Any]:
    """A grafted field: unions of object shapes become one object with all their properties."""
    if node.get("anyOf") or node.get("oneOf"):
        shapes = variants(node)
        if all(shape.get("type") == "object" for shape in shapes):
            properties = {name: as_plain_schema(sub) for name, sub in merged_properties(node).items()}
            return {"type": "object", "properties": properties}
    plain: dict[str, Any] = {}
    for key, value in node.items():
        if key == "properties":
            plain[key] = {name: as_plain_schema(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            plain[key] = as_plain_schema(value)
        else:
            plain[key] = value
    return plain


def graft(old: dict[str, Any], new: dict[str, Any], path: str, log: list[str]) -> None:
    """Add to `old` (Istio 1.18) what `new` (Istio 1.29.2) has and it lacks, recursively."""
    new_properties = merged_properties(new)
    if new_properties and "properties" in old:
        for name, sub in new_properties.items():
            if name not in old["properties"]:
                old["properties"][name] = {**as_plain_schema(sub), **GRAFT_MARK}
                log.append(f"added {path}.{name}")
            else:
                graft(old["properties"][name], sub, f"{path}.{name}", log)
        # The declarations spell "at most one of" rules as unions with Exclude<>, which the generator
        # cannot evaluate and turns into plain `required`; the 1.18 schema already has those rules.
        alternatives = names_in_alternatives(old)
        required = sorted((required_in_every_variant(new) & set(old["properties"])) - alternatives)
        missing = [name for name in required if name not in old.get("required", [])]
        if missing:
            old["required"] = [*old.get("required", []), *missing]
            log.append(f"required {path}: {', '.join(missing)}")
    for key in ("items", "additionalProperties"):
        new_sub = next((shape[key] for shape in variants(new) if isinstance(shape.get(key), dict)), None)
        if isinstance(old.get(key), dict) and new_sub is not None:
            graft(old[key], new_sub, f"{path}[]" if key == "items" else f"{path}{{}}", log)


def main(argv: list[str]) -> int:
    options = [arg for arg in argv[1:] if arg.startswith("--")]
    arguments = [arg for arg in argv[1:] if not arg.startswith("--")]
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        tarball = Path(arguments[0]) if arguments else fetch_tarball(workdir)
        with tarfile.open(tarball) as archive:
            archive.extractall(workdir, filter="data")
        package = workdir / "package"
        manifest = json.loads((package / "package.json").read_text())
        if manifest["version"] != VERSION:
            raise SystemExit(f"expected {PACKAGE} {VERSION}, got {manifest['version']}")

        found: dict[tuple[str, str, str], dict[str, Any]] = {}
        for module in sorted(package.glob("*.istio.io/v*/*.js")):
            if module.stem == "index":
                continue
            group, version, kind = module.parent.parent.name, module.parent.name, module.stem
            found[(group, version, kind)] = schema_from_module(module.read_text(), str(module))

        # All versions of one kind that the package has must agree, or deriving v1 would be a guess.
        for (group, version, kind), schema in found.items():
            for (other_group, other_version, other_kind), other in found.items():
                same_kind = (group, kind) == (other_group, other_kind) and version != other_version
                if same_kind and without_api_version(schema) != without_api_version(other):
                    raise SystemExit(f"{group} {kind}: {version} and {other_version} schemas differ")

        newer = {} if "--no-graft" in options else typescript_schemas(workdir)
        for group, kinds in WANTED.items():
            for kind in kinds:
                base = found.get((group, "v1beta1", kind))
                if base is None:
                    raise SystemExit(f"{PACKAGE} {VERSION} has no v1beta1 schema for {kind} ({group})")
                base = json.loads(json.dumps(base))
                if (group, kind) in newer:
                    log: list[str] = []
                    graft(base["properties"]["spec"], newer[(group, kind)]["properties"]["spec"], "spec", log)
                    for line in log:
                        print(f"{kind}: {line}")
                for version in VERSIONS:
                    target = OUT / group / version / f"{kind}.json"
                    target.parent.mkdir(parents=True, exist_ok=True)
                    text = json.dumps(with_api_version(base, f"{group}/{version}"), indent=1, sort_keys=True)
                    target.write_text(text + "\n")
                    print(f"wrote {target.relative_to(OUT.parents[3])}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
