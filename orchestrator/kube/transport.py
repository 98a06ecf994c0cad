"""How KubeClient's requests reach an API server: one method, `send(method, url, body, headers)`.

`DirectTransport` keeps HTTP/1.1 keep-alive connections of the standard library's `http.client`, set up
from the ApiClient's Configuration the way the kubernetes client sets up its own urllib3 pool: the server's
CA (a file, PEM data, or the system store), a client certificate, the TLS server name, or no verification
when `verify_ssl` is off. It exists for speed: a canary step is one request per cluster, and urllib3's
connection pool, retry and response layers cost more CPU than the request itself (about 0.3 ms of 0.6;
`benchmarks/rollout.py`, docs/benchmarks.md). Everything about a request is still the ApiClient's: URL,
auth headers (the Configuration renews cloud tokens) and user agent.

`PoolTransport` sends through the ApiClient's own urllib3 pool, and serves what DirectTransport does not
set up itself: proxies (HTTP or SOCKS), custom socket options, and a hostname check against a name other
than the server's.
"""

from __future__ import annotations

import http.client
import select
import socket
import ssl
import threading
from typing import Protocol

import kubernetes.client
import urllib3

Reply = tuple[int, bytes]  # the response's status and body


class Transport(Protocol):
    def send(self, method: str, url: str, body: bytes | None, headers: dict[str, str]) -> Reply:
        """Send one request to `url` (the API server's address, path and query)."""
        ...


def transport_for(api: kubernetes.client.ApiClient, timeout: tuple[float, float]) -> Transport:
    configuration = api.configuration
    if DirectTransport.serves(configuration):
        return DirectTransport(configuration, timeout)
    return PoolTransport(api, timeout)


class _Connection(http.client.HTTPSConnection):
    """An HTTPS connection whose TLS server name may differ from the host it dials (`tls_server_name`)."""

    def __init__(self, host: str, port: int, *, context: ssl.SSLContext, server_name: str, timeout: float):
        super().__init__(host, port, timeout=timeout, context=context)
        self._context = context
        self._server_name = server_name

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self._server_name)


class DirectTransport:
    """Keep-alive connections to one API server, shared by threads (each request takes one to itself)."""

    def __init__(self, configuration: kubernetes.client.Configuration, timeout: tuple[float, float]) -> None:
        url = urllib3.util.parse_url(configuration.host)
        self._https = url.scheme == "https"
        self._host = (url.host or "localhost").strip("[]")  # an IPv6 literal is dialled without brackets
        self._port = url.port or (443 if self._https else 80)
        self._server_name = configuration.tls_server_name or self._host
        self._origin_length = len(f"{url.scheme}://{url.netloc}")  # what stays is a path prefix in host
        self._context = _ssl_context(configuration) if self._https else None
        self._connect_timeout, self._read_timeout = timeout
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    @staticmethod
    def serves(configuration: kubernetes.client.Configuration) -> bool:
        return (
            not configuration.proxy
            and configuration.socket_options is None
            and not getattr(configuration, "keep_alive", False)  # TCP keepalive options: the pool's job
            and configuration.assert_hostname is None
        )

    def send(self, method: str, url: str, body: bytes | None, headers: dict[str, str]) -> Reply:
        connection = self._take()
        try:
            connection.request(method, url[self._origin_length :], body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
        except BaseException:
            connection.close()  # in an unknown state: never reused
            raise
        if response.will_close:
            connection.close()
        else:
            with self._lock:
                self._idle.append(connection)
        return response.status, data

    def _take(self) -> http.client.HTTPConnection:
        while True:
            with self._lock:
                connection = self._idle.pop() if self._idle else None
            if connection is None:
                return self._open()
            if not _dropped(connection):
                return connection
            connection.close()  # the server closed it while it was idle

    def _open(self) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection
        if self._context is not None:
            connection = _Connection(
                self._host,
                self._port,
                context=self._context,
                server_name=self._server_name,
                timeout=self._connect_timeout,
            )
        else:
            connection = http.client.HTTPConnection(self._host, self._port, timeout=self._connect_timeout)
        connection.connect()
        assert connection.sock is not None
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection.sock.settimeout(self._read_timeout)
        return connection


def _dropped(connection: http.client.HTTPConnection) -> bool:
    """An idle connection with something to read has been closed by the server (or is out of step)."""
    sock = connection.sock
    if sock is None:
        return True
    if hasattr(select, "poll"):  # not select(): it refuses descriptors above 1023, common in a busy server
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)


def _ssl_context(configuration: kubernetes.client.Configuration) -> ssl.SSLContext:
    """TLS settings as the kubernetes client's own pool would have them."""
    if not configuration.verify_ssl:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context = ssl.create_default_context(
            cafile=configuration.ssl_ca_cert or None, cadata=configuration.ca_cert_data or None
        )
    if configuration.cert_file:
        context.load_cert_chain(configuration.cert_file, configuration.key_file or None)
    return context


class PoolTransport:
    """Requests through the urllib3 pool the ApiClient configured (proxies included)."""

    def __init__(self, api: kubernetes.client.ApiClient, timeout: tuple[float, float]) -> None:
        host = api.configuration.host
        manager = api.rest_client.pool_manager
        url = urllib3.util.parse_url(host)
        # A forwarding proxy (plain HTTP) is sent absolute URLs; otherwise the host's own pool, with paths.
        forwarding = isinstance(manager, urllib3.ProxyManager) and url.scheme != "https"
        self._origin_length = 0 if forwarding else len(f"{url.scheme}://{url.netloc}")
        self._urlopen = manager.urlopen if forwarding else manager.connection_from_url(host).urlopen
        self._timeout = urllib3.Timeout(connect=timeout[0], read=timeout[1])

    def send(self, method: str, url: str, body: bytes | None, headers: dict[str, str]) -> Reply:
        response = self._urlopen(
            method,
            url[self._origin_length :],
            body=body,
            headers=headers,
            timeout=self._timeout,
            assert_same_host=False,
        )
        return response.status, response.data
