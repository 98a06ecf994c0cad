"""Health gates of a rollout: analysis checked before anything is applied, and run against a wave.

Every cluster of the wave is judged at once (in parallel), each against its own canary and stable
versions; the gate passes only when every cluster's analysis is Successful. Measurements are handed to the
engine as they are taken, so each one is stored with its value, phase, time and query.

The verdict, as Argo Rollouts acts on an AnalysisRun: Successful everywhere → the gate passes; any cluster
Failed or Error → the gate fails (the engine rolls back); otherwise, with at least one cluster
Inconclusive, the gate is `inconclusive`: the engine pauses the rollout (reason InconclusiveAnalysis) for a
person, `approve` goes on and `abort` rolls back. A first Failed or Error cluster stops the others at once;
an Inconclusive one does not, so a failure elsewhere in the wave still decides.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from orchestrator.analysis import AnalysisContext, AnalysisPhase, Siblings, resolve_analysis, run_analysis
from orchestrator.analysis.validation import validate_pipeline_analysis
from orchestrator.config import Environment, Pipeline, Project
from orchestrator.config.pipeline import Metric
from orchestrator.logs import carried, log_context
from orchestrator.rollout.plan import Analyze
from orchestrator.rollout.workload import ClusterWorkload

PROMETHEUS_ENV = "ORCHESTRATOR_PROMETHEUS_URL"
# An analysis *step* must end for the rollout to go on: a metric that sets no `count` (the built-in
# templates measure "until stopped", as background analysis does) is measured this many times in a step,
# or more when its limits need more to be reachable (a gate that cannot fail is never made up here).
STEP_MEASUREMENTS = 2


def step_count(metric: Metric) -> int:
    """The count an analysis step gives a metric without one: enough for every limit to be reachable."""
    failure = metric.failure_limit + 1 if metric.failure_limit >= 0 else 0
    return max(
        STEP_MEASUREMENTS,
        failure + metric.consecutive_success_limit,
        metric.consecutive_success_limit,
        metric.inconclusive_limit + 1,
    )


@dataclass(frozen=True)
class GateResult:
    """`passed`: go on. Not passed and `inconclusive`: no cluster failed, at least one was Inconclusive;
    pause for a person (Argo pauses the rollout). Not passed otherwise: fail the step and roll back."""

    passed: bool
    message: str
    inconclusive: bool = False


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
        metrics_urls: Callable[[str], tuple[str, ...]] = lambda _cluster: (),
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
            m if m.count or step.background else m.model_copy(update={"count": step_count(m)})
            for m in resolved.metrics
        ]

        # The first cluster whose analysis fails decides the gate: the others stop measuring at once,
        # so the rollback is not held back while a bad canary keeps its traffic. An Inconclusive cluster
        # does not stop a step's others (they have a count): a failure elsewhere must still roll back
        # rather than pause; background analysis runs until stopped, so there an Inconclusive one must
        # end it to be seen.
        siblings = Siblings(
            lambda phase: (
                phase in (AnalysisPhase.FAILED, AnalysisPhase.ERROR)
                or (step.background and phase is AnalysisPhase.INCONCLUSIVE)
            )
        )

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

            with log_context(cluster=cluster):  # the analysis's own log lines name the cluster they judge
                outcome = run_analysis(
                    metrics,
                    context,
                    on_measurement=store,
                    stop=should_stop,
                    dry_run=resolved.dry_run,
                    siblings=siblings,
                )
            siblings.offer(outcome.phase)
            return cluster, outcome.phase, outcome.message

        with ThreadPoolExecutor(max_workers=max(1, len(workloads))) as pool:
            verdicts = list(pool.map(carried(judge), workloads))
        return gate_verdict(verdicts, self.source())


def gate_verdict(verdicts: list[tuple[str, AnalysisPhase, str]], source: str) -> GateResult:
    """Per-cluster (cluster, phase, message) → the gate: failed if any Failed or Error (a stopped cluster
    ends Successful and is not counted), inconclusive if no failure but an Inconclusive, passed otherwise."""
    failed = [(c, p, m) for c, p, m in verdicts if p in (AnalysisPhase.FAILED, AnalysisPhase.ERROR)]
    if failed:
        return GateResult(False, "; ".join(f"{c}: {m}" for c, _, m in failed))
    unsure = [(c, m) for c, p, m in verdicts if p is not AnalysisPhase.SUCCESSFUL]
    if unsure:
        text = "; ".join(f"{c}: {m}" for c, m in unsure)
        return GateResult(False, f"analysis inconclusive, a person decides: {text}", inconclusive=True)
    return GateResult(True, f"analysis passed in {', '.join(c for c, _, _ in verdicts)} ({source})")


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
