"""The real Prometheus for tests, and an Istio-shaped /metrics endpoint a test controls.

`PrometheusServer` runs the Debian `prometheus` binary on 127.0.0.1 with its own storage in a temporary
folder, a 1 s scrape of the given targets, polls until it is ready, and stops it with SIGTERM. A missing
binary FAILS the test (set ORCHESTRATOR_TEST_PROMETHEUS to use another binary). Prometheus is ready in a
fraction of a second but scrapes first a few seconds later and `rate()` needs two samples, so tests poll
(`wait_for_value`) and never sleep a fixed time.

`IstioMetrics` serves `istio_requests_total` and `istio_request_duration_milliseconds` with Istio's labels
from a prometheus_client registry; `IstioTraffic` feeds it steady simulated requests per version (rate,
error ratio, latency) on a background thread, so counters grow the way a mesh's do.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

from orchestrator.sim.metrics import BUCKETS_MS

PROMETHEUS_ENV = "ORCHESTRATOR_TEST_PROMETHEUS"
READY_TIMEOUT = 30.0
# Istio's buckets for istio_request_duration_milliseconds: the emulated mesh's own.
ISTIO_DURATION_BUCKETS = BUCKETS_MS


def prometheus_binary() -> str:
    """The prometheus executable; fails the test (never skips) when it is not installed."""
    configured = os.environ.get(PROMETHEUS_ENV)
    found = (
        configured
        or shutil.which("prometheus")
        or ("/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else None)
    )
    if not found or not Path(found).exists():
        pytest.fail(
            "the real Prometheus is needed: install Debian's package "
            "(apt-get install --no-install-recommends prometheus) or set "
            f"{PROMETHEUS_ENV} to a prometheus binary",
            pytrace=False,
        )
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrometheusServer:
    """One Prometheus process scraping `targets` (URLs of /metrics endpoints) every `scrape_interval`."""

    def __init__(self, targets: Sequence[str], workdir: Path, *, scrape_interval: str = "1s") -> None:
        self.targets = list(targets)
        self.workdir = workdir
        self.scrape_interval = scrape_interval
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "prometheus.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config(self) -> dict[str, Any]:
        jobs = []
        for index, target in enumerate(self.targets):
            parts = urlsplit(target)
            jobs.append(
                {
                    "job_name": f"target-{index}",
                    "scrape_interval": self.scrape_interval,
                    "scrape_timeout": self.scrape_interval,
                    "scheme": parts.scheme or "http",
                    "metrics_path": parts.path or "/metrics",
                    "static_configs": [{"targets": [parts.netloc]}],
                }
            )
        return {"global": {"scrape_interval": self.scrape_interval}, "scrape_configs": jobs}

    def start(self) -> PrometheusServer:
        binary = prometheus_binary()
        self.workdir.mkdir(parents=True, exist_ok=True)
        config_path = self.workdir / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(self.config()))
        for _attempt in range(3):  # a free port can be taken between choosing and binding it
            self.port = free_port()
            with self.log_path.open("wb") as log_file:
                self.process = subprocess.Popen(
                    [
                        binary,
                        f"--config.file={config_path}",
                        f"--storage.tsdb.path={self.workdir / 'data'}",
                        f"--web.listen-address=127.0.0.1:{self.port}",
                        "--log.level=warn",
                    ],
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                )
            if self._wait_ready():
                return self
            if "address already in use" not in self.log():
                break
        log = self.log()
        self.stop()
        pytest.fail(f"Prometheus did not become ready at {self.url}:\n{log[-2000:]}", pytrace=False)

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                return False
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/-/ready", timeout=1.0).status_code == 200:
                    return True
            time.sleep(0.05)
        return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        """SIGTERM (Prometheus exits cleanly), SIGKILL only if it does not within 10 s."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def query(self, promql: str) -> list[float]:
        """The values of an instant query (a vector's samples, or a scalar as one value)."""
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=5.0)
        response.raise_for_status()
        data = response.json()["data"]
        if data["resultType"] == "scalar":
            return [float(data["result"][1])]
        return [float(sample["value"][1]) for sample in data["result"]]

    def wait_for_value(
        self, promql: str, accept: Callable[[list[float]], bool] | None = None, *, timeout: float = 60.0
    ) -> list[float]:
        """Poll `promql` until it gives a non-empty, non-NaN answer that `accept` (if given) takes."""
        deadline = time.monotonic() + timeout
        last: list[float] = []
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                last = self.query(promql)
                if last and not any(math.isnan(v) for v in last) and (accept is None or accept(last)):
                    return last
            time.sleep(0.2)
        pytest.fail(f"Prometheus never answered {promql!r} acceptably within {timeout:g}s (last: {last})")

    def wait_for_scrapes(self, timeout: float = 60.0) -> None:
        """Every target scraped successfully at least twice (so rate() has two samples)."""
        count = len(self.targets)
        self.wait_for_value(
            "count(count_over_time(up[1m]) >= 2 and up == 1)", lambda v: v[0] >= count, timeout=timeout
        )

    def __enter__(self) -> PrometheusServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture
def prometheus_factory(tmp_path: Path) -> Iterator[Callable[[Sequence[str]], PrometheusServer]]:
    """Start real Prometheus servers scraping the given /metrics URLs; all are stopped after the test."""
    started: list[PrometheusServer] = []

    def start(targets: Sequence[str]) -> PrometheusServer:
        server = PrometheusServer(targets, tmp_path / f"prometheus-{len(started)}").start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


# --- an Istio-shaped mesh metrics endpoint ------------------------------------------------------------------


ISTIO_LABELS = (
    "reporter",
    "source_workload",
    "destination_workload",
    "destination_workload_namespace",
    "destination_service_name",
    "destination_version",
    "response_code",
)


class IstioMetrics:
    """`/metrics` with Istio's standard request metrics, served on 127.0.0.1 by prometheus_client."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "istio_requests_total", "Requests seen by the mesh", ISTIO_LABELS, registry=self.registry
        )
        self.duration = Histogram(
            "istio_request_duration_milliseconds",
            "Request duration in milliseconds",
            ISTIO_LABELS,
            buckets=ISTIO_DURATION_BUCKETS,
            registry=self.registry,
        )
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"

    def start(self) -> IstioMetrics:
        self.port = free_port()
        self._server, self._thread = start_http_server(self.port, addr="127.0.0.1", registry=self.registry)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def record(
        self,
        *,
        namespace: str,
        workload: str,
        version: str,
        service: str,
        code: int,
        latency_ms: float,
        reporter: str = "destination",
    ) -> None:
        labels = {
            "reporter": reporter,
            "source_workload": "istio-ingressgateway",
            "destination_workload": workload,
            "destination_workload_namespace": namespace,
            "destination_service_name": service,
            "destination_version": version,
            "response_code": str(code),
        }
        self.requests.labels(**labels).inc()
        self.duration.labels(**labels).observe(latency_ms)


@dataclass
class VersionTraffic:
    """Simulated traffic to one version: requests per second, share of 5xx answers, typical latency."""

    workload: str
    version: str
    rps: float = 50.0
    error_rate: float = 0.0
    latency_ms: float = 20.0


class IstioTraffic:
    """Records requests into an IstioMetrics every `tick` seconds, per version, until stopped."""

    def __init__(
        self, metrics: IstioMetrics, *, namespace: str, service: str, tick: float = 0.05, seed: int = 7
    ) -> None:
        self.metrics = metrics
        self.namespace = namespace
        self.service = service
        self.tick = tick
        self.versions: dict[str, VersionTraffic] = {}
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="istio-traffic", daemon=True)
        self._owed: dict[str, float] = {}

    def set(self, traffic: VersionTraffic) -> None:
        with self._lock:
            self.versions[traffic.version] = traffic

    def start(self) -> IstioTraffic:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(self.tick):
            now = time.monotonic()
            elapsed, last = now - last, now
            with self._lock:
                versions = list(self.versions.values())
            for traffic in versions:
                owed = self._owed.get(traffic.version, 0.0) + traffic.rps * elapsed
                whole = int(owed)
                self._owed[traffic.version] = owed - whole
                for _ in range(whole):
                    failed = self._random.random() < traffic.error_rate
                    # log-normal spread around the typical latency, as real request times are
                    latency = traffic.latency_ms * self._random.lognormvariate(0.0, 0.25)
                    self.metrics.record(
                        namespace=self.namespace,
                        workload=traffic.workload,
                        version=traffic.version,
                        service=self.service,
                        code=503 if failed else 200,
                        latency_ms=latency,
                    )


@pytest.fixture
def istio_metrics() -> Iterator[IstioMetrics]:
    """An Istio-shaped /metrics endpoint on 127.0.0.1, stopped after the test."""
    metrics = IstioMetrics().start()
    yield metrics
    metrics.stop()
