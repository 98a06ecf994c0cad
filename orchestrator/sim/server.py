"""`SimServer`: the simulated clusters of one process, each with its own HTTPS endpoint.

    with SimServer(clusters=("aws", "azure", "gcp"), state_dir=tmp_path) as sim:
        sim.endpoint("aws")          # "https://127.0.0.1:PORT"
        sim.metrics_endpoint("aws")  # plain-HTTP URL for Prometheus
        sim.ca_path, sim.token, sim.kubeconfig_path
        sim.cluster("aws")           # SimCluster: .store, .faults, .rivals, .request_log, .controller, .mesh

`authenticator(cluster_name, bearer_token) -> bool`, when given, replaces the default token check
(cloud targets verify their real credential formats this way).
"""

from __future__ import annotations

import functools
import hmac
import secrets
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType

from orchestrator.logs import get_logger
from orchestrator.sim import DEFAULT_CLUSTERS
from orchestrator.sim.api import KubeApi, Request, Response, json_response
from orchestrator.sim.certs import ServerCerts, make_certs
from orchestrator.sim.clock import Clock, RealClock
from orchestrator.sim.control import make_control_handler
from orchestrator.sim.controller import DeploymentController
from orchestrator.sim.errors import status_body
from orchestrator.sim.faults import Faults
from orchestrator.sim.kubeconfig import write_kubeconfig
from orchestrator.sim.mesh import MeshTraffic
from orchestrator.sim.requestlog import RequestLog
from orchestrator.sim.rivals import Rivals
from orchestrator.sim.store import ObjectStore
from orchestrator.sim.transport import EndpointHooks, Listener

log = get_logger(__name__)

Authenticator = Callable[[str, str], bool]
CONTROL = "_control"  # key of the control endpoint's port in `ports`


class SimCluster:
    """One simulated cluster: its objects, controller, mesh, faults, request log and listeners."""

    def __init__(
        self,
        name: str,
        clock: Clock,
        *,
        ready_delay: float,
        requests_per_second: float,
        tick: float,
        host: str,
    ) -> None:
        self.name = name
        self.host = host
        self.clock = clock
        self.store = ObjectStore(clock)
        self.faults = Faults(seed=sum(name.encode()))
        self.request_log = RequestLog()
        self.controller = DeploymentController(self.store, clock, ready_delay=ready_delay)
        self.mesh = MeshTraffic(self.store, clock, cluster=name, requests_per_second=requests_per_second)
        self.tick = tick
        self.api = KubeApi(self.store, clock, server_address=lambda: f"{self.host}:{self.port}")
        self.rivals = Rivals(self.api.handle, self.store.lock)  # other managers writing first (conflicts)
        self.listener: Listener | None = None
        self.metrics_listener: Listener | None = None

    @property
    def port(self) -> int:
        return self.listener.port if self.listener else 0

    @property
    def endpoint_url(self) -> str:
        return f"https://{self.host}:{self.port}"

    @property
    def metrics_port(self) -> int:
        return self.metrics_listener.port if self.metrics_listener else 0

    @property
    def metrics_url(self) -> str:
        return f"http://{self.host}:{self.metrics_port}/metrics"

    def metrics_text(self) -> bytes:
        return self.mesh.exposition()

    def is_down(self) -> bool:
        return self.faults.config.down

    def set_down(self, down: bool = True) -> None:
        """Refuse connections (close the listening socket), or listen again on the same port."""
        self.faults.set(down=down)

    def _on_down_change(self, down: bool) -> None:
        if self.listener is None:
            return
        if down:
            self.listener.stop()
        else:
            self.listener.start()


class SimServer:
    def __init__(
        self,
        clusters: Iterable[str] = DEFAULT_CLUSTERS,
        state_dir: Path | str | None = None,
        authenticator: Authenticator | None = None,
        *,
        token: str | None = None,
        host: str = "127.0.0.1",
        ports: dict[str, int] | None = None,
        metrics_ports: dict[str, int] | None = None,
        clock: Clock | None = None,
        ready_delay: float = 0.5,
        requests_per_second: float = 50.0,
        tick: float = 0.05,
        run_controllers: bool = True,
    ) -> None:
        names = list(clusters)
        if not names or len(set(names)) != len(names):
            raise ValueError(f"cluster names must be distinct and at least one: {names}")
        self._own_state_dir = state_dir is None
        self.state_dir = Path(state_dir) if state_dir is not None else Path(tempfile.mkdtemp(prefix="sim-"))
        self.token = token or secrets.token_urlsafe(32)
        self.authenticator = authenticator
        self.host = host
        self.clock: Clock = clock or RealClock()
        self.run_controllers = run_controllers
        self._ports = ports or {}
        self._metrics_ports = metrics_ports or {}
        self._clusters = {
            n: SimCluster(
                n,
                self.clock,
                ready_delay=ready_delay,
                requests_per_second=requests_per_second,
                tick=tick,
                host=host,
            )
            for n in names
        }
        self._certs: ServerCerts | None = None
        self._control_listener: Listener | None = None
        self._started = False

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> SimServer:
        if self._started:
            return self
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._certs = make_certs(self.state_dir / "pki")
        tls = self._certs.server_context()
        control = make_control_handler(lambda: self._clusters)
        try:
            for name, cluster in self._clusters.items():
                hooks = EndpointHooks(
                    api=cluster.rivals.handle,
                    control=control,
                    metrics=cluster.metrics_text,
                    authenticate=functools.partial(self._authenticate, name),
                    faults=cluster.faults,
                    request_log=cluster.request_log,
                    is_down=cluster.is_down,
                    authenticate_control=functools.partial(self._authenticate_control, name),
                )
                cluster.listener = Listener(self.host, self._ports.get(name, 0), hooks=hooks, tls=tls)
                cluster.metrics_listener = Listener(
                    self.host, self._metrics_ports.get(name, 0), metrics=cluster.metrics_text
                )
                cluster.faults.on_down_change(cluster._on_down_change)
                cluster.listener.start()
                cluster.metrics_listener.start()
                if self.run_controllers:
                    cluster.controller.start(on_tick=cluster.mesh.advance, tick=cluster.tick)
            self._control_listener = Listener(
                self.host, self._ports.get(CONTROL, 0), hooks=self._control_hooks(control), tls=tls
            )
            self._control_listener.start()
            write_kubeconfig(
                self.kubeconfig_path,
                {n: c.endpoint_url for n, c in self._clusters.items()},
                self.ca_path.read_bytes(),
                self.token,
            )
        except BaseException:
            self.stop()
            raise
        self._started = True
        log.info("sim.started", clusters={n: c.endpoint_url for n, c in self._clusters.items()})
        return self

    def stop(self) -> None:
        listeners = [
            listener
            for cluster in self._clusters.values()
            for listener in (cluster.listener, cluster.metrics_listener)
            if listener is not None
        ]
        if self._control_listener is not None:
            listeners.append(self._control_listener)
        for cluster in self._clusters.values():
            cluster.store.close()
        # Stop everything at once: each stop waits for its serving loop to notice.
        stoppers = [threading.Thread(target=listener.stop) for listener in listeners]
        stoppers += [threading.Thread(target=c.controller.stop) for c in self._clusters.values()]
        for thread in stoppers:
            thread.start()
        for thread in stoppers:
            thread.join()
        self._started = False
        if self._own_state_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _control_hooks(self, control: Callable[[Request], Response]) -> EndpointHooks:
        """The control endpoint serves only `/_sim/` (and /metrics of nothing); it is never down."""

        def no_api(_req: Request) -> Response:
            return json_response(
                404, status_body(404, "the sim control endpoint serves /_sim/ only", "NotFound")
            )

        return EndpointHooks(
            api=no_api,
            control=control,
            metrics=lambda: b"",
            authenticate=lambda token: hmac.compare_digest(token.encode(), self.token.encode()),
            faults=Faults(),
            request_log=RequestLog(),
            is_down=lambda: False,
        )

    def _authenticate_control(self, cluster: str, token: str) -> bool:
        """The control API takes the sim's own token, or whatever the cluster's authenticator accepts."""
        return hmac.compare_digest(token.encode(), self.token.encode()) or self._authenticate(cluster, token)

    def _authenticate(self, cluster: str, token: str) -> bool:
        if self.authenticator is not None:
            try:
                return bool(self.authenticator(cluster, token))
            except Exception:  # a failing credential check is a rejected credential, not a crash
                log.warning("sim.authenticator_failed", cluster=cluster, exc_info=True)
                return False
        return hmac.compare_digest(token.encode(), self.token.encode())

    # -- the contract ----------------------------------------------------------------------------
    @property
    def cluster_names(self) -> list[str]:
        return list(self._clusters)

    def cluster(self, name: str) -> SimCluster:
        try:
            return self._clusters[name]
        except KeyError:
            raise KeyError(f"unknown sim cluster {name!r}; known: {', '.join(self._clusters)}") from None

    def endpoint(self, name: str) -> str:
        return self.cluster(name).endpoint_url

    def metrics_endpoint(self, name: str) -> str:
        return self.cluster(name).metrics_url

    @property
    def control_endpoint(self) -> str:
        """HTTPS endpoint of the `/_sim/` control API that stays up when every cluster is down."""
        port = self._control_listener.port if self._control_listener else 0
        return f"https://{self.host}:{port}"

    @property
    def ca_path(self) -> Path:
        return self.state_dir / "pki" / "ca.pem"

    @property
    def kubeconfig_path(self) -> Path:
        return self.state_dir / "kubeconfig"
