"""A private CA and a server certificate for 127.0.0.1/localhost, written to the state directory."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass(frozen=True)
class ServerCerts:
    ca_path: Path
    cert_path: Path  # server certificate chain
    key_path: Path

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(str(self.cert_path), str(self.key_path))
        # HTTP/1.1 only: Go clients (kubectl) fall back to it when h2 is not offered.
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx


def make_certs(directory: Path) -> ServerCerts:
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="addtocloud sim")
    server = ca.issue_cert("127.0.0.1", "localhost", "::1")
    paths = ServerCerts(directory / "ca.pem", directory / "server.pem", directory / "server-key.pem")
    ca.cert_pem.write_to_path(str(paths.ca_path))
    server.private_key_pem.write_to_path(str(paths.key_path))
    paths.key_path.chmod(0o600)
    with paths.cert_path.open("wb") as out:
        for blob in server.cert_chain_pems:
            out.write(blob.bytes())
    return paths
