"""`orchestrator sim up | down | status`: the built-in emulated clusters, in the background like kind."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click
from click.core import ParameterSource

from orchestrator.cli.options import format_option
from orchestrator.errors import ConfigError, OrchestratorError, UnknownNameError
from orchestrator.sim import DEFAULT_CLUSTERS

if TYPE_CHECKING:  # the emulator's modules load when a command runs, not for --help
    from orchestrator.sim.client import SimInfo

MEMORY_NOTE = "objects are kept in memory only: `sim down` (or a crash) starts the clusters empty again"


def _state_dir_option(func: click.decorators.FC) -> click.decorators.FC:
    return click.option(
        "--state-dir",
        envvar="ORCHESTRATOR_STATE_DIR",
        default=None,
        metavar="DIR",
        help="The sim keeps its files in DIR/sim [env ORCHESTRATOR_STATE_DIR; default: .orchestrator]",
    )(func)


def _print_info(info: SimInfo, output: str, extra: dict[str, object]) -> None:
    if output == "json":
        click.echo(
            json.dumps(
                {**extra, "running": True, **info.to_json(), "objects_persisted": False, "note": MEMORY_NOTE},
                indent=2,
            )
        )
        return
    click.echo(f"sim running (pid {info.pid}), kubeconfig {info.kubeconfig_path}")
    for cluster in info.clusters.values():
        click.echo(f"  {cluster.context:<12} {cluster.endpoint:<28} metrics {cluster.metrics_endpoint}")
    first = next(iter(info.clusters.values()))
    click.echo(f"  try: kubectl --kubeconfig {info.kubeconfig_path} --context {first.context} get namespaces")
    click.echo(f"note: {MEMORY_NOTE}")


@click.group("sim")
def sim_group() -> None:
    """The built-in emulated Kubernetes clusters (default: aws, azure, gcp)."""


@sim_group.command("up")
@_state_dir_option
@click.option(
    "--clusters",
    default=",".join(DEFAULT_CLUSTERS),
    show_default=True,
    help="Comma-separated names of the clusters to emulate.",
)
@click.option(
    "--ready-delay", type=float, default=0.5, show_default=True, help="Seconds until a new pod becomes ready."
)
@click.option("--timeout", type=float, default=30.0, show_default=True, help="Seconds to wait for readiness.")
@format_option
def up_command(state_dir: str | None, clusters: str, ready_delay: float, timeout: float, output: str) -> None:
    """Start the sim in the background: one emulated cluster per name in --clusters.

    When the sim is already running this does nothing, and it fails (exit 1) if --clusters names a cluster
    the running sim does not have: `sim down` first.
    """
    names = [c.strip() for c in clusters.split(",") if c.strip()]
    if not names:
        raise ConfigError("--clusters names no cluster", key="--clusters")
    bad = [n for n in names if not n.replace("-", "").isalnum() or n != n.lower()]
    if bad:
        raise ConfigError(
            f"cluster names must be lower-case letters, digits and '-': {', '.join(bad)}", key="--clusters"
        )
    from orchestrator.sim.daemon import start_daemon

    info, started = start_daemon(state_dir, names, timeout=timeout, ready_delay=ready_delay)
    asked = click.get_current_context().get_parameter_source("clusters") != ParameterSource.DEFAULT
    missing = [n for n in names if n not in info.clusters]
    if not started and asked and missing:
        # The running sim keeps its clusters (objects live in memory; restarting it would lose them).
        raise OrchestratorError(
            f"the sim is already running with clusters {', '.join(info.clusters)}, not {', '.join(missing)}; "
            "run `orchestrator sim down` first to start other clusters (its objects are lost)"
        )
    if output == "text":
        click.echo("sim started" if started else f"sim already running: {', '.join(info.clusters)}")
    _print_info(info, output, {"started": started})


@sim_group.command("down")
@_state_dir_option
@format_option
def down_command(state_dir: str | None, output: str) -> None:
    """Stop the sim (its objects are lost)."""
    from orchestrator.sim.daemon import stop_daemon

    stopped = stop_daemon(state_dir)
    if output == "json":
        click.echo(json.dumps({"stopped": stopped}))
    else:
        click.echo("sim stopped" if stopped else "sim was not running")


@sim_group.command("status")
@_state_dir_option
@format_option
def status_command(state_dir: str | None, output: str) -> None:
    """Show whether the sim runs, its clusters and endpoints."""
    from orchestrator.sim.client import load_running_sim, sim_dir

    info = load_running_sim(state_dir)
    if info is None:
        if output == "json":
            click.echo(json.dumps({"running": False, "directory": str(sim_dir(state_dir))}))
        else:
            click.echo(
                f"sim not running (state directory {sim_dir(state_dir)}); start it with `orchestrator sim up`"
            )
        return
    _print_info(info, output, {})


@sim_group.command("faults")
@_state_dir_option
@click.argument("cluster")
@click.option(
    "--latency-ms", type=click.FloatRange(min=0), default=None, help="Added latency per API request."
)
@click.option(
    "--error-rate", type=click.FloatRange(0, 1), default=None, help="Share of requests answered 503."
)
@click.option(
    "--throttle-rate",
    type=click.FloatRange(0, 1),
    default=None,
    help="Share of requests answered 429 with Retry-After.",
)
@click.option(
    "--drop-rate",
    type=click.FloatRange(0, 1),
    default=None,
    help="Share of connections closed without an answer.",
)
@click.option("--down/--up", "down", default=None, help="Refuse connections / listen again.")
@click.option("--clear", is_flag=True, help="Remove every fault first (and bring the cluster up).")
@format_option
def faults_command(
    state_dir: str | None,
    cluster: str,
    latency_ms: float | None,
    error_rate: float | None,
    throttle_rate: float | None,
    drop_rate: float | None,
    down: bool | None,
    clear: bool,
    output: str,
) -> None:
    """Show or change the injected faults of one running sim cluster (for rehearsing failures)."""
    from orchestrator.sim.client import SimControl, load_running_sim
    from orchestrator.sim.faults import FaultConfig

    info = load_running_sim(state_dir)
    if info is None:
        raise OrchestratorError("the sim is not running; start it with `orchestrator sim up`")
    if cluster not in info.clusters:
        raise UnknownNameError("sim cluster", cluster, list(info.clusters))
    settings = {
        key: value
        for key, value in {
            "latency_ms": latency_ms,
            "error_rate": error_rate,
            "throttle_rate": throttle_rate,
            "drop_rate": drop_rate,
            "down": down,
        }.items()
        if value is not None
    }
    with SimControl.for_sim(info) as control:
        if clear:
            control.clear_faults(cluster)
        current = control.set_faults(cluster, **settings) if settings else control.faults(cluster)
    if output == "json":
        click.echo(json.dumps({"cluster": cluster, "faults": current}))
        return
    defaults = FaultConfig().to_json()
    active = {k: v for k, v in current.items() if v != defaults.get(k)}
    text = ", ".join(f"{k}={v}" for k, v in active.items()) or "none"
    click.echo(f"sim cluster {cluster}: faults {text}")
