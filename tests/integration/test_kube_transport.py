"""KubeClient's transports against real TLS servers: the emulator, and the fake HTTPS server asking for a
client certificate and, in one test, closing idle connections as a load balancer in front of an API server
does."""

from __future__ import annotations

import contextlib
import re
import socket
import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path

import kubernetes.client
import pytest
import structlog
import trustme

from orchestrator.kube.client import ClusterUnreachableError, KubeClient, RetryPolicy
from orchestrator.kube.transport import DirectTransport, PoolTransport, transport_for
from orchestrator.sim.server import SimServer
from tests.fakes.https import FakeHTTPSServer, Request, Response


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimServer]:
    with SimServer(clusters=("aws",), state_dir=tmp_path_factory.mktemp("sim")) as server:
        yield server


def configuration(host: str, **settings: object) -> kubernetes.client.Configuration:
    config = kubernetes.client.Configuration()
    config.host = host
    for name, value in settings.items():
        setattr(config, name, value)
    return config


def sim_configuration(sim: SimServer, **settings: object) -> kubernetes.client.Configuration:
    token = {"api_key": {"BearerToken": sim.token}, "api_key_prefix": {"BearerToken": "Bearer"}}
    return configuration(sim.endpoint("aws"), **{**token, **settings})


def namespaces(config: kubernetes.client.Configuration, retry: RetryPolicy | None = None) -> list[str]:
    client = KubeClient(kubernetes.client.ApiClient(config), cluster="aws", retry=retry or RetryPolicy())
    return [item["metadata"]["name"] for item in client.list("/api/v1/namespaces")]


def test_the_server_ca_tls_name_and_no_verification_are_honoured(sim: SimServer) -> None:
    assert "default" in namespaces(sim_configuration(sim, ssl_ca_cert=str(sim.ca_path)))
    ca_data = sim.ca_path.read_text()
    assert "default" in namespaces(sim_configuration(sim, ca_cert_data=ca_data, tls_server_name="localhost"))
    assert "default" in namespaces(sim_configuration(sim, verify_ssl=False))


def test_unusable_tls_files_are_reported_naming_the_cluster(sim: SimServer, tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.crt")
    config = sim_configuration(sim, ssl_ca_cert=str(sim.ca_path), cert_file=missing, key_file=missing)
    with pytest.raises(ClusterUnreachableError, match="cluster aws is unreachable: cannot set up TLS"):
        KubeClient(kubernetes.client.ApiClient(config), cluster="aws")


def test_an_untrusted_server_is_refused_without_retrying(sim: SimServer) -> None:
    stranger = trustme.CA().cert_pem.bytes().decode()
    for settings in (
        {"ca_cert_data": stranger},
        {"ssl_ca_cert": str(sim.ca_path), "tls_server_name": "x.test"},
    ):
        with structlog.testing.capture_logs() as logs, pytest.raises(ClusterUnreachableError) as caught:
            namespaces(sim_configuration(sim, **settings))
        assert "certificate verify failed" in str(caught.value)
        assert [e for e in logs if e["event"] == "kube_retry"] == []


class _ConnectProxy(socketserver.ThreadingTCPServer):
    """An HTTP CONNECT proxy (what `proxy-url` in a kubeconfig usually names); it records the tunnels."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Tunnel)
        self.tunnels: list[str] = []


class _Tunnel(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        server = self.server
        assert isinstance(server, _ConnectProxy)
        request_line = self.rfile.readline().decode()
        while self.rfile.readline() not in (b"\r\n", b""):
            pass  # the request's headers
        method, target, _ = request_line.split(" ", 2)
        assert method == "CONNECT", request_line
        server.tunnels.append(target)
        host, port = target.rsplit(":", 1)
        with socket.create_connection((host, int(port))) as upstream:
            self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            self.wfile.flush()
            pump = threading.Thread(target=_pipe, args=(upstream, self.connection), daemon=True)
            pump.start()
            _pipe(self.connection, upstream)
            pump.join(timeout=5)


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while chunk := source.recv(65536):
            sink.sendall(chunk)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


def test_a_proxy_is_reached_through_the_api_clients_own_pool(sim: SimServer) -> None:
    direct = kubernetes.client.ApiClient(sim_configuration(sim, ssl_ca_cert=str(sim.ca_path)))
    assert isinstance(transport_for(direct, (1.0, 1.0)), DirectTransport)
    with _ConnectProxy() as proxy:
        threading.Thread(target=proxy.serve_forever, daemon=True).start()
        address = f"http://127.0.0.1:{proxy.server_address[1]}"
        config = sim_configuration(sim, ssl_ca_cert=str(sim.ca_path), proxy=address)
        assert isinstance(transport_for(kubernetes.client.ApiClient(config), (1.0, 1.0)), PoolTransport)
        assert "default" in namespaces(config)
        proxy.shutdown()
    assert proxy.tunnels == [sim.endpoint("aws").removeprefix("https://")]


# --- a server that wants a client certificate (and, in one test, hangs up on idle connections) -----------


@pytest.fixture
def server() -> Iterator[FakeHTTPSServer]:
    with FakeHTTPSServer(require_client_certificate=True) as fake:

        @fake.route("GET", "/version")
        def version(request: Request, _: re.Match[str]) -> Response:
            return Response.json({"client": request.client_name, "connection": request.connection})

        yield fake


def client_for(server: FakeHTTPSServer, tmp_path: Path) -> KubeClient:
    identity = server.ca.issue_cert("deployer@example.com", common_name="deployer")
    cert, key = tmp_path / "client.crt", tmp_path / "client.key"
    identity.cert_chain_pems[0].write_to_path(str(cert))
    identity.private_key_pem.write_to_path(str(key))
    config = configuration(
        server.url, ssl_ca_cert=str(server.ca_path), cert_file=str(cert), key_file=str(key)
    )
    return KubeClient(kubernetes.client.ApiClient(config), cluster="onprem")


def test_a_client_certificate_is_presented(server: FakeHTTPSServer, tmp_path: Path) -> None:
    client = client_for(server, tmp_path)
    first, second = client.get("/version"), client.get("/version")
    assert first is not None and second is not None
    assert first["client"] == "deployer"
    assert first["connection"] == second["connection"]  # kept alive, not reopened


def test_a_connection_the_server_hung_up_while_idle_is_replaced_without_a_retry(
    server: FakeHTTPSServer, tmp_path: Path
) -> None:
    server.hang_up_after_each_response = True
    client = client_for(server, tmp_path)
    with structlog.testing.capture_logs() as logs:
        answers = [client.get("/version") for _ in range(3)]
    assert len({answer["connection"] for answer in answers if answer}) == 3
    assert [e for e in logs if e["event"] == "kube_retry"] == []
