"""Built-in analysis templates over Istio's standard metrics, and resolving a step's templates and args.

`request-success-rate` and `request-duration-p99` are Flagger's two built-in checks, narrowed to the canary
by `destination_version`:

    success rate = sum(rate(istio_requests_total{reporter="destination",
                       destination_workload_namespace=NS, destination_workload=~WORKLOAD,
                       destination_version=CANARY, response_code!~"5.*"}[WINDOW]))
                 / sum(rate(istio_requests_total{...the same, any code...}[WINDOW])) * 100
    p99          = histogram_quantile(0.99,
                       sum(rate(istio_request_duration_milliseconds_bucket{...}[WINDOW])) by (le))

Thresholds are arguments (`min-success-rate`, default 99 %; `max-p99-ms`, default 500 ms). Both metrics
have success and failure conditions, so a window without requests (NaN) is Inconclusive, not a verdict,
and with `inconclusiveLimit: 0` the first such window ends the analysis Inconclusive: a canary that stops
reporting is never promoted, a person decides. A canary with no series yet (an empty answer) is an Error,
retried after 10 s. Each declares its `direct`
equivalent, so it is measured from /metrics scrapes when no Prometheus is configured. They measure every
5 s without a count, like Argo Rollouts' background analysis: a run using them ends when a limit is
exceeded or when the caller stops it. A pipeline's own `analysisTemplates` entry of the same name wins.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from orchestrator.config.pipeline import (
    AnalysisArg,
    AnalysisStep,
    AnalysisTemplate,
    DryRun,
    Metric,
    MetricProvider,
    PrometheusProvider,
)
from orchestrator.errors import ConfigError

_ISTIO_SELECTOR = (
    'reporter="destination",'
    'destination_workload_namespace="{{namespace}}",'
    'destination_workload=~"{{canary_workload}}",'
    'destination_version="{{canary_version}}"'
)

SUCCESS_RATE_QUERY = (
    f'sum(rate(istio_requests_total{{{_ISTIO_SELECTOR},response_code!~"5.*"}}[{{{{window}}}}]))'
    f" / sum(rate(istio_requests_total{{{_ISTIO_SELECTOR}}}[{{{{window}}}}])) * 100"
)
P99_QUERY = (
    "histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket"
    f"{{{_ISTIO_SELECTOR}}}[{{{{window}}}}])) by (le))"
)

BUILTIN_INTERVAL_SECONDS = 5.0

BUILTIN_TEMPLATES: dict[str, AnalysisTemplate] = {
    "request-success-rate": AnalysisTemplate(
        args=[AnalysisArg(name="min-success-rate", value="99")],
        metrics=[
            Metric(
                name="request-success-rate",
                provider=MetricProvider(
                    prometheus=PrometheusProvider(query=SUCCESS_RATE_QUERY, direct="request-success-rate")
                ),
                interval=BUILTIN_INTERVAL_SECONDS,
                success_condition="result[0] >= {{args.min-success-rate}}",
                failure_condition="result[0] < {{args.min-success-rate}}",
                failure_limit=0,
                inconclusive_limit=0,
                consecutive_error_limit=4,
            )
        ],
    ),
    "request-duration-p99": AnalysisTemplate(
        args=[AnalysisArg(name="max-p99-ms", value="500")],
        metrics=[
            Metric(
                name="request-duration-p99",
                provider=MetricProvider(
                    prometheus=PrometheusProvider(query=P99_QUERY, direct="request-duration-p99")
                ),
                interval=BUILTIN_INTERVAL_SECONDS,
                success_condition="result[0] <= {{args.max-p99-ms}}",
                failure_condition="result[0] > {{args.max-p99-ms}}",
                failure_limit=0,
                inconclusive_limit=0,
                consecutive_error_limit=4,
            )
        ],
    ),
}


@dataclass(frozen=True)
class ResolvedAnalysis:
    """The metrics an analysis runs, and the argument values their placeholders read."""

    metrics: list[Metric]
    args: dict[str, str]
    dry_run: frozenset[str] = frozenset()  # metrics measured and recorded, never deciding (Argo's dryRun)


def find_template(name: str, templates: Mapping[str, AnalysisTemplate]) -> AnalysisTemplate | None:
    """A pipeline's own template of that name, else a built-in one."""
    return templates.get(name) or BUILTIN_TEMPLATES.get(name)


def resolve_analysis(
    step: AnalysisStep, templates: Mapping[str, AnalysisTemplate], *, where: str = "analysis"
) -> ResolvedAnalysis:
    """Merge the step's templates and inline metrics; fill arguments from the step, then defaults.

    ConfigError (naming `where`) for an unknown template, an argument no template declares, a required
    argument without a value, two defaults that disagree, or two metrics with the same name.
    """
    declared: dict[str, str | None] = {}
    metrics: list[Metric] = []
    rules: list[tuple[str, DryRun]] = [(f"{where}.dryRun[{i}]", r) for i, r in enumerate(step.dry_run)]
    given = {arg.name: arg.value for ref in step.templates for arg in ref.args}
    for index, ref in enumerate(step.templates):
        template = find_template(ref.template_name, templates)
        if template is None:
            known = ", ".join(sorted({*templates, *BUILTIN_TEMPLATES}))
            raise ConfigError(
                f"unknown analysis template {ref.template_name!r}; known templates: {known}",
                key=f"{where}.templates[{index}].templateName",
            )
        for arg in template.args:
            if arg.name in declared and arg.value != declared[arg.name] and arg.name not in given:
                raise ConfigError(
                    f"argument {arg.name!r} has different defaults in two templates "
                    f"({declared[arg.name]!r} and {arg.value!r}); give it a value",
                    key=f"{where}.templates[{index}].args",
                )
            declared.setdefault(arg.name, arg.value)
        metrics.extend(template.metrics)
        rules += [(f"template {ref.template_name!r} dryRun[{i}]", r) for i, r in enumerate(template.dry_run)]
    metrics.extend(step.metrics)

    for name in given:
        if name not in declared:
            raise ConfigError(
                f"argument {name!r} is not declared by any of the step's templates "
                f"(declared: {', '.join(sorted(declared)) or 'none'})",
                key=f"{where}.templates",
            )
    args: dict[str, str] = {}
    for name, default in declared.items():
        value = given.get(name) if given.get(name) is not None else default
        if value is None:
            raise ConfigError(f"argument {name!r} needs a value", key=f"{where}.templates")
        args[name] = value

    seen: set[str] = set()
    for metric in metrics:
        if metric.name in seen:
            raise ConfigError(
                f"two metrics are named {metric.name!r}; metric names must be unique", key=where
            )
        seen.add(metric.name)
    dry_run: set[str] = set()
    for rule_where, rule in rules:
        matched = {m.name for m in metrics if re.search(rule.metric_name, m.name)}
        if not matched:
            raise ConfigError(
                f"dryRun metricName {rule.metric_name!r} matches no metric of this analysis "
                f"({', '.join(m.name for m in metrics)})",
                key=rule_where if rule_where.startswith(where) else where,
            )
        dry_run |= matched
    return ResolvedAnalysis(metrics=metrics, args=args, dry_run=frozenset(dry_run))
