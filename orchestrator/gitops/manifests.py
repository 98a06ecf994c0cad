"""How desired state is laid out in a GitOps repository, and how a committed file is read back.

One file per service and cluster, `<path>/<cluster>/<service>.yaml`: the cluster's rendered objects as a
multi-document YAML stream, in the renderer's dependency order, keys sorted, with nothing volatile in it, so
the same release always makes the same bytes (and an unchanged release makes no commit). Reviewers see one
file change per cluster a deployment touches; `git log -- <path>/<cluster>/<service>.yaml` is that service's
history there.

Files are written and read back with the renderer's YAML writer and loader (`render/documents.py`), which
give PyYAML's bytes and objects: PyYAML's own representer and constructor were about three quarters of the
CPU a worker spent committing desired state (py-spy on `benchmarks/fleet.py`).
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from typing import Any

import yaml

from orchestrator.errors import OrchestratorError
from orchestrator.render.documents import dump_documents, load_documents

Manifest = dict[str, Any]

WIDTH = 1 << 16  # no folding of long strings: a value is one line in a review

HEADER = "# Desired state written by the AddToCloud orchestrator: change the templates, not this file.\n"


class CommittedManifestError(OrchestratorError):
    """A committed file that does not read back as Kubernetes objects (hand-edited or corrupted)."""


def manifest_path(prefix: str, cluster: str, service: str) -> str:
    return posixpath.join(prefix, cluster, f"{service}.yaml") if prefix else f"{cluster}/{service}.yaml"


def service_glob(prefix: str, service: str) -> str:
    """Every cluster's file of one service: what a deployment of that service owns."""
    return manifest_path(prefix, "*", service)


def dump(objects: Sequence[Manifest]) -> bytes:
    """The file's bytes: what `yaml.dump_all(objects, Dumper=CSafeDumper, sort_keys=True,
    default_flow_style=False, allow_unicode=True, width=1 << 16)` writes, after the header, by the renderer's
    writer (it builds the nodes itself)."""
    documents = dump_documents(objects, sort_keys=True, explicit_start=False, allow_unicode=True, width=WIDTH)
    return (HEADER + "---\n" + documents).encode()


def load(content: bytes, *, where: str) -> list[Manifest]:
    """The objects of a committed file; CommittedManifestError naming the file when it is not YAML objects.

    Read as `yaml.load_all(text, Loader=CSafeLoader)` reads it, by the renderer's loader (yaml-rs where the
    answer is provably the same, `orchestrator/yaml_fast.py`): a worker reads back every file it commits.
    """
    try:
        documents = load_documents(content.decode("utf-8"))
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
