"""How desired state is laid out in a GitOps repository, and how a committed file is read back.

One file per service and cluster, `<path>/<cluster>/<service>.yaml`: the cluster's rendered objects as a
multi-document YAML stream, in the renderer's dependency order, keys sorted, with nothing volatile in it, so
the same release always makes the same bytes (and an unchanged release makes no commit). Reviewers see one
file change per cluster a deployment touches; `git log -- <path>/<cluster>/<service>.yaml` is that service's
history there.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from typing import Any

import yaml

from orchestrator.errors import OrchestratorError

Manifest = dict[str, Any]

_Dumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

HEADER = "# Desired state written by the AddToCloud orchestrator: change the templates, not this file.\n"


class CommittedManifestError(OrchestratorError):
    """A committed file that does not read back as Kubernetes objects (hand-edited or corrupted)."""


def manifest_path(prefix: str, cluster: str, service: str) -> str:
    return posixpath.join(prefix, cluster, f"{service}.yaml") if prefix else f"{cluster}/{service}.yaml"


def service_glob(prefix: str, service: str) -> str:
    """Every cluster's file of one service: what a deployment of that service owns."""
    return manifest_path(prefix, "*", service)


def dump(objects: Sequence[Manifest]) -> bytes:
    documents = yaml.dump_all(
        objects, Dumper=_Dumper, sort_keys=True, default_flow_style=False, allow_unicode=True, width=1 << 16
    )
    return (HEADER + "---\n" + documents).encode()


def load(content: bytes, *, where: str) -> list[Manifest]:
    """The objects of a committed file; CommittedManifestError naming the file when it is not YAML objects."""
    try:
        documents = list(yaml.load_all(content.decode("utf-8"), Loader=_Loader))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise CommittedManifestError(f"{where}: not valid YAML: {exc}") from None
    objects: list[Manifest] = []
    for number, document in enumerate(documents, start=1):
        if document is None:
            continue
        if not isinstance(document, dict) or "kind" not in document or "apiVersion" not in document:
            raise CommittedManifestError(
                f"{where}: document {number} is not a Kubernetes object (it needs apiVersion and kind)"
            )
        objects.append(document)
    return objects
