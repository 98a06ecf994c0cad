"""Environment isolation for tests that drive cloud SDKs against fakes.

Cloud SDKs read credentials and trust stores from the environment and the home folder; a test must see
only what it sets up. These helpers use pytest's monkeypatch on environment variables only (never on a
client library).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_CLOUD_PREFIXES = (
    "AWS_",
    "AZURE_",
    "GOOGLE_",
    "GCE_",
    "CLOUDSDK_",
    "MSI_",
    "IDENTITY_",
    "IMDS_",
    "KUBECONFIG",
)
_CA_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")


def isolate_cloud_environment(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """No cloud credentials or config from this machine: cloud variables cleared, HOME an empty folder."""
    for name in list(os.environ):
        if name.startswith(_CLOUD_PREFIXES):
            monkeypatch.delenv(name)
    home.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(home / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "aws-credentials"))
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(home / "gcloud"))
    # google-auth's last resort is the GCE metadata server; there is none here, so do not wait for it.
    monkeypatch.setenv("NO_GCE_CHECK", "True")
    monkeypatch.setenv("GCE_METADATA_HOST", "127.0.0.1:9")
    monkeypatch.setenv("GCE_METADATA_IP", "127.0.0.1:9")


def trust_ca(monkeypatch: pytest.MonkeyPatch, ca_path: Path) -> None:
    """Make requests-based SDK calls trust `ca_path` (these variables beat a session's own `verify`)."""
    for name in _CA_VARIABLES:
        monkeypatch.setenv(name, str(ca_path))
