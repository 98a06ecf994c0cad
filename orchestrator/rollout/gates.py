"""Health gates of a rollout: analysis checked before anything is applied, and run against a wave.

Every cluster of the wave is judged at once (in parallel), each against its own canary and stable
versions; the gate passes only when every cluster's analysis is Successful. Measurements are handed to the
engine as they are taken, so each one is stored with its value, phase, time and query.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from orchestrator.analysis import AnalysisContext, AnalysisPhase, resolve_analysis, run_analysis
from orchestrator.analysis.validation import validate_pipeline_analysis
from orchestrator.config import Environment, Pipeline, Project
from orchestrator.rollout.plan import Analyze
from orchestrator.rollout.workload import ClusterWorkload

PROMETHEUS_ENV = "ORCHESTRATOR_PROMETHEUS_URL"
# An analysis *step* must end for the rollout to go on: a metric that sets no `count` (the built-in
# templates measure "until stopped", as background analysis does) is measured this many times in a step.
STEP_MEASUREMENTS = 2


@dataclass(frozen=True)
class GateResult:
    passed: bool
    message: str


class AnalysisGate(Protocol):
    """Runs an analysis step against the clusters of a wave; records measurements through `record`."""

    def source(self) -> str:
        """Where the figures come from, for the person watching."""

    def __call__(
        self,
        step: Analyze,
        workloads: list[ClusterWorkload],
        record: Callable[[str, str, dict[str, Any]], None],
        should_stop: Callable[[], bool],
    ) -> GateResult: ...


def validate_analysis(project: Project, pipeline: Pipeline) -> None:
    """Broken queries, conditions or template references: exit 2, naming file, line and key."""
    problems = validate_pipeline_analysis(pipeline)
    if not problems:
        return
    first = problems[0]
    document = project.pipeline_document(pipeline.service)
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    raise document.error(first.message + more, first.location)


def prometheus_url(environment: Environment) -> str | None:
    return os.environ.get(PROMETHEUS_ENV) or environment.prometheus


class AnalysisGateRunner:
    """The engine's AnalysisGate: resolves a step's templates and runs them on every cluster of a wave."""

    def __init__(
        self,
        pipeline: Pipeline,
        environment: Environment,
        *,
        prometheus: str | None = None,
        metrics_urls: Callable[[str], tuple[str, ...]] = lambda cluster: (),
    ) -> None:
        self.pipeline = pipeline
        self.environment = environment
        self.prometheus = prometheus
        self.metrics_urls = metrics_urls

    def source(self) -> str:
        return (
            f"prometheus at {self.prometheus}" if self.prometheus else "direct scrapes of the mesh /metrics"
        )

    def __call__(
        self,
        step: Analyze,
        workloads: list[ClusterWorkload],
        record: Callable[[str, str, dict[str, Any]], None],
        should_stop: Callable[[], bool],
    ) -> GateResult:
        resolved = resolve_analysis(step.analysis, self.pipeline.analysis_templates)
        metrics = [
            m if m.count or step.background else m.model_copy(update={"count": STEP_MEASUREMENTS})
            for m in resolved.metrics
        ]

        # The first cluster whose analysis fails decides the gate: the others stop measuring at once,
        # so the rollback is not held back while a bad canary keeps its traffic.
        decided = threading.Event()

        def judge(workload: ClusterWorkload) -> tuple[str, AnalysisPhase, str]:
            cluster = workload.rendered.cluster
            context = AnalysisContext(
                service=self.pipeline.service,
                namespace=workload.namespace,
                environment=self.environment.name,
                cluster=cluster,
                canary_version=workload.rendered.version,
                stable_version=workload.stable_version() or "",
                canary_workload=workload.canary_name,
                stable_workload=workload.service,
                args=resolved.args,
                prometheus_url=self.prometheus,
                metrics_urls=self.metrics_urls(cluster),
                api_client=workload.client.api,
            )

            def store(measurement: Any) -> None:
                data = measurement.to_dict()
                text = f"{data.get('metric')} = {_figure(data.get('value'))} -> {data.get('phase')}"
                record(cluster, text, data)

            stop = lambda: decided.is_set() or should_stop()  # noqa: E731
            outcome = run_analysis(metrics, context, on_measurement=store, stop=stop)
            if outcome.phase != AnalysisPhase.SUCCESSFUL:
                decided.set()
            return cluster, outcome.phase, outcome.message

        with ThreadPoolExecutor(max_workers=max(1, len(workloads))) as pool:
            verdicts = list(pool.map(judge, workloads))
        failed = [
            f"{cluster}: {message}"
            for cluster, phase, message in verdicts
            if phase != AnalysisPhase.SUCCESSFUL
        ]
        if failed:
            return GateResult(False, "; ".join(failed))
        return GateResult(
            True, f"analysis passed in {', '.join(c for c, _, _ in verdicts)} ({self.source()})"
        )


def _figure(value: Any) -> str:
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    return f"{value:.4g}" if isinstance(value, float) else str(value)


GateFactory = Callable[[Pipeline, Environment], AnalysisGate]


def default_gates(pipeline: Pipeline, environment: Environment) -> AnalysisGate:
    """Gates read the environment's Prometheus; with none, the mesh /metrics of `sim` clusters directly."""
    return AnalysisGateRunner(
        pipeline,
        environment,
        prometheus=prometheus_url(environment),
        metrics_urls=sim_metrics_urls(environment),
    )


def sim_metrics_urls(environment: Environment) -> Callable[[str], tuple[str, ...]]:
    """For `sim` clusters: the running emulator's mesh /metrics endpoint of the cluster."""
    from orchestrator.sim.client import load_running_sim

    def urls(cluster: str) -> tuple[str, ...]:
        target = environment.cluster(cluster).target
        if target.type != "sim":
            return ()
        info = load_running_sim(target.state_dir)
        if info is None or target.cluster not in info.clusters:
            return ()
        return (info.metrics_endpoint(target.cluster),)

    return urls
