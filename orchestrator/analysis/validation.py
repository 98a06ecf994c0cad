"""Find broken analysis before anything is rolled out: bad queries, conditions, placeholders, arguments.

Every check here runs without any cluster or Prometheus. Placeholders are filled with stand-in values
(so an unknown `{{name}}` is caught), conditions are parsed, PromQL is checked for balanced brackets and
quotes; with `prometheus_url`, Prometheus itself is asked to parse each query (optional: nothing needs it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from orchestrator.analysis.base import AnalysisContext
from orchestrator.analysis.conditions import ConditionSyntaxError, parse_condition
from orchestrator.analysis.promapi import PrometheusAPI, PrometheusError
from orchestrator.analysis.templates import find_template, resolve_analysis
from orchestrator.analysis.templating import TemplateError
from orchestrator.config.pipeline import AnalysisStep, AnalysisTemplate, Metric, Pipeline
from orchestrator.config.source import format_location
from orchestrator.errors import ConfigError

Location = tuple[str | int, ...]

_STAND_IN = AnalysisContext(
    service="service",
    namespace="namespace",
    environment="environment",
    cluster="cluster",
    canary_version="canary",
    stable_version="stable",
)
_PAIRS = {"(": ")", "[": "]", "{": "}"}


@dataclass(frozen=True)
class AnalysisProblem:
    """One problem, at a location given in the file's own keys (e.g. analysisTemplates.x.metrics[0].query)."""

    location: Location
    message: str

    def __str__(self) -> str:
        where = format_location(self.location)
        return f"{where}: {self.message}" if where else self.message


def promql_shape_error(query: str) -> str | None:
    """Unbalanced brackets or an unclosed string in `query`, or None."""
    stack: list[str] = []
    quote: str | None = None
    escaped = False
    for position, ch in enumerate(query, start=1):
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = None
            continue
        if ch in "\"'`":
            quote = ch
        elif ch in _PAIRS:
            stack.append(_PAIRS[ch])
        elif ch in ")]}" and (not stack or stack.pop() != ch):
            return f"unexpected {ch!r} at character {position}"
    if quote:
        return f"unclosed string (opened with {quote})"
    if stack:
        return f"missing {stack[-1]!r} at the end"
    return None


def validate_metric(
    metric: Metric, args: Mapping[str, str] | None = None, *, prometheus_url: str | None = None
) -> list[str]:
    """Problems with one metric, each starting with the field at fault ("successCondition: ...")."""
    return [str(p) for p in _metric_problems(metric, dict(args or {}), (), prometheus_url)]


def _metric_problems(
    metric: Metric, args: dict[str, str], at: Location, prometheus_url: str | None
) -> list[AnalysisProblem]:
    problems: list[AnalysisProblem] = []
    context = replace(_STAND_IN, args=args)

    def problem(field: tuple[str | int, ...], message: str) -> None:
        problems.append(AnalysisProblem((*at, *field), message))

    provider = metric.provider
    for condition_key, text in (
        ("successCondition", metric.success_condition),
        ("failureCondition", metric.failure_condition),
    ):
        if text is None:
            continue
        if provider.kubernetes is not None or provider.judge is not None:
            kind = "kubernetes" if provider.kubernetes is not None else "judge"
            problem(
                (condition_key,), f"conditions are not used by the {kind} provider, which decides by itself"
            )
            continue
        try:
            parse_condition(context.render(text, where=condition_key))
        except (TemplateError, ConditionSyntaxError) as exc:
            problem((condition_key,), str(exc).removeprefix(f"{condition_key}: "))
    if metric.count is not None and metric.count > 1 and metric.interval <= 0:
        problem(("interval",), "an interval longer than 0s is needed when count is more than 1")

    queries: list[tuple[tuple[str | int, ...], str, str | None]] = []
    if provider.prometheus is not None:
        queries.append((("provider", "prometheus", "query"), provider.prometheus.query, None))
    if provider.judge is not None:
        judge = provider.judge
        for index, judged in enumerate(judge.judged_metrics):
            field: tuple[str | int, ...] = (
                ("provider", "judge", "metrics", index, "query")
                if judge.metrics
                else ("provider", "judge", "query")
            )
            if "{{version}}" not in judged.query.replace(" ", ""):
                problem(
                    field, "the judge's query must contain {{version}} so canary and stable samples differ"
                )
            queries.append((field, judged.query, "canary"))
            if judged.total is not None:
                total_field = (*field[:-1], "total")
                if "{{version}}" not in judged.total.replace(" ", ""):
                    problem(total_field, "total must contain {{version}}, as the query does")
                queries.append((total_field, judged.total, "canary"))
    for field, text, version in queries:
        try:
            rendered = context.render(text, where="query", version=version)
        except TemplateError as exc:
            problem(field, str(exc).removeprefix("query: "))
            continue
        if not rendered.strip():
            problem(field, "the query is empty")
            continue
        shape = promql_shape_error(rendered)
        if shape:
            problem(field, f"the PromQL is malformed: {shape}")
            continue
        if prometheus_url:
            try:
                complaint = PrometheusAPI(prometheus_url).syntax_error(rendered)
            except PrometheusError:
                complaint = None  # Prometheus unreachable: this check is optional
            if complaint:
                problem(field, complaint)

    if provider.webhook is not None:
        webhook = provider.webhook
        try:
            url = context.render(webhook.url, where="url")
            for key, value in webhook.headers.items():
                context.render(value, where=f"headers.{key}")
            for key, value in (webhook.body or {}).items():
                if isinstance(value, str):
                    context.render(value, where=f"body.{key}")
        except TemplateError as exc:
            problem(("provider", "webhook"), str(exc))
        else:
            if not url.startswith(("http://", "https://")):
                problem(
                    ("provider", "webhook", "url"), f"{webhook.url!r} must start with http:// or https://"
                )
    return problems


def _stand_in_args(template: AnalysisTemplate) -> dict[str, str]:
    return {arg.name: arg.value if arg.value is not None else "1" for arg in template.args}


def validate_step(
    step: AnalysisStep,
    templates: Mapping[str, AnalysisTemplate],
    at: Location = (),
    *,
    prometheus_url: str | None = None,
    reported: set[tuple[str, str, str]] | None = None,
) -> list[AnalysisProblem]:
    """Problems with one analysis step: template references and arguments, then every metric it runs
    with the step's argument values. `reported` holds (template, metric, problem) already reported where
    the template is defined, so they are not repeated here."""
    try:
        resolved = resolve_analysis(step, templates, where=format_location(at) or "analysis")
    except ConfigError as exc:
        return [AnalysisProblem(at, exc.reason)]
    problems: list[AnalysisProblem] = []
    for index, ref in enumerate(step.templates):
        template = find_template(ref.template_name, templates)
        assert template is not None  # resolve_analysis checked it
        for metric in template.metrics:
            for found in _metric_problems(metric, resolved.args, (), prometheus_url):
                if reported and (ref.template_name, metric.name, str(found)) in reported:
                    continue
                problems.append(
                    AnalysisProblem(
                        (*at, "templates", index),
                        f"template {ref.template_name!r}, metric {metric.name!r}: {found}",
                    )
                )
    for index, metric in enumerate(step.metrics):
        problems += _metric_problems(metric, resolved.args, (*at, "metrics", index), prometheus_url)
    return problems


def validate_pipeline_analysis(
    pipeline: Pipeline, *, prometheus_url: str | None = None
) -> list[AnalysisProblem]:
    """Every problem in a pipeline's analysis templates and analysis steps, located by file keys."""
    problems: list[AnalysisProblem] = []
    reported: set[tuple[str, str, str]] = set()
    for name, template in pipeline.analysis_templates.items():
        for index, metric in enumerate(template.metrics):
            for found in _metric_problems(metric, _stand_in_args(template), (), prometheus_url):
                reported.add((name, metric.name, str(found)))
                problems.append(
                    AnalysisProblem(
                        ("analysisTemplates", name, "metrics", index, *found.location), found.message
                    )
                )
    strategy = pipeline.strategy
    steps: list[tuple[Location, AnalysisStep]] = []
    if strategy.canary is not None:
        for index, canary_step in enumerate(strategy.canary.steps):
            if canary_step.analysis is not None:
                steps.append((("strategy", "canary", "steps", index, "analysis"), canary_step.analysis))
        if strategy.canary.analysis is not None:
            steps.append((("strategy", "canary", "analysis"), strategy.canary.analysis))
    if strategy.blue_green is not None:
        for key in ("prePromotionAnalysis", "postPromotionAnalysis"):
            step = getattr(
                strategy.blue_green,
                "pre_promotion_analysis" if key.startswith("pre") else "post_promotion_analysis",
            )
            if step is not None:
                steps.append((("strategy", "blueGreen", key), step))
    for location, step in steps:
        problems += validate_step(
            step, pipeline.analysis_templates, location, prometheus_url=prometheus_url, reported=reported
        )
    return problems
