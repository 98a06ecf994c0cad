"""The kubeconfig for the simulated clusters: contexts `sim-<name>` with the CA embedded and a token."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import yaml


def context_name(cluster: str) -> str:
    return f"sim-{cluster}"


def build_kubeconfig(endpoints: dict[str, str], ca_pem: bytes, token: str) -> dict[str, Any]:
    ca_data = base64.b64encode(ca_pem).decode()
    names = list(endpoints)
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [
            {
                "name": context_name(n),
                "cluster": {"server": endpoints[n], "certificate-authority-data": ca_data},
            }
            for n in names
        ],
        "users": [{"name": "sim-admin", "user": {"token": token}}],
        "contexts": [
            {
                "name": context_name(n),
                "context": {"cluster": context_name(n), "user": "sim-admin", "namespace": "default"},
            }
            for n in names
        ],
        "current-context": context_name(names[0]) if names else "",
    }


def write_kubeconfig(path: Path, endpoints: dict[str, str], ca_pem: bytes, token: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(build_kubeconfig(endpoints, ca_pem, token), sort_keys=False))
    os.chmod(tmp, 0o600)
    tmp.replace(path)
    return path
