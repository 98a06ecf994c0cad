"""Built-in templates, resolving a step's templates and arguments, and catching broken analysis early."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from orchestrator.analysis import (
    BUILTIN_TEMPLATES,
    AnalysisContext,
    resolve_analysis,
    validate_metric,
    validate_pipeline_analysis,
)
from orchestrator.analysis.templating import TemplateError, render_template
from orchestrator.config.loader import Project
from orchestrator.config.pipeline import AnalysisStep, AnalysisTemplate, Metric
from orchestrator.config.source import load_yaml
from orchestrator.errors import ConfigError


def step(*refs: tuple[str, dict[str, str]], metrics: list[dict[str, object]] | None = None) -> AnalysisStep:
    return AnalysisStep.model_validate(
        {
            "templates": [
                {"templateName": name, "args": [{"name": k, "value": v} for k, v in args.items()]}
                for name, args in refs
            ],
            "metrics": metrics or [],
        }
    )


# --- the built-in Istio templates --------------------------------------------------------------------------


def test_builtin_success_rate_renders_flaggers_query_for_the_canary_version() -> None:
    resolved = resolve_analysis(step(("request-success-rate", {})), {})
    assert resolved.args == {"min-success-rate": "99"}
    context = AnalysisContext(
        service="api", namespace="shop", canary_version="v2", canary_workload="api-canary", window="30s"
    )
    metric = resolved.metrics[0]
    assert metric.provider.prometheus is not None
    query = context.render(metric.provider.prometheus.query, where="query")
    selector = (
        'reporter="destination",destination_workload_namespace="shop",'
        'destination_workload=~"api-canary",destination_version="v2"'
    )
    assert query == (
        f'sum(rate(istio_requests_total{{{selector},response_code!~"5.*"}}[30s]))'
        f" / sum(rate(istio_requests_total{{{selector}}}[30s])) * 100"
    )
    assert metric.success_condition == "result[0] >= {{args.min-success-rate}}"


def test_builtin_p99_uses_histogram_quantile_and_a_threshold_argument() -> None:
    resolved = resolve_analysis(step(("request-duration-p99", {"max-p99-ms": "250"})), {})
    assert resolved.args == {"max-p99-ms": "250"}
    metric = resolved.metrics[0]
    assert metric.provider.prometheus is not None
    assert metric.provider.prometheus.query.startswith("histogram_quantile(0.99, sum(rate(")
    assert metric.provider.prometheus.query.endswith("by (le))")
    assert metric.provider.prometheus.direct == "request-duration-p99"


def test_both_builtins_in_one_step_share_the_arguments() -> None:
    resolved = resolve_analysis(
        step(("request-success-rate", {"min-success-rate": "95"}), ("request-duration-p99", {})), {}
    )
    assert [m.name for m in resolved.metrics] == ["request-success-rate", "request-duration-p99"]
    assert resolved.args == {"min-success-rate": "95", "max-p99-ms": "500"}


def test_a_pipeline_template_of_the_same_name_wins_over_the_builtin() -> None:
    own = AnalysisTemplate.model_validate(
        {"metrics": [{"name": "mine", "provider": {"webhook": {"url": "http://127.0.0.1:1/"}}}]}
    )
    resolved = resolve_analysis(step(("request-success-rate", {})), {"request-success-rate": own})
    assert [m.name for m in resolved.metrics] == ["mine"]


@pytest.mark.parametrize(
    ("analysis", "templates", "message"),
    [
        (step(("nope", {})), {}, "unknown analysis template 'nope'; known templates: request-duration-p99"),
        (step(("request-success-rate", {"typo": "1"})), {}, "argument 'typo' is not declared"),
        (
            step(("needs-arg", {})),
            {
                "needs-arg": {
                    "args": [{"name": "host"}],
                    "metrics": [{"name": "m", "provider": {"webhook": {"url": "http://{{args.host}}/"}}}],
                }
            },
            "argument 'host' needs a value",
        ),
        (
            step(("request-success-rate", {}), ("request-success-rate", {})),
            {},
            "two metrics are named 'request-success-rate'",
        ),
    ],
)
def test_resolution_errors_name_the_problem(
    analysis: AnalysisStep, templates: dict[str, object], message: str
) -> None:
    parsed = {name: AnalysisTemplate.model_validate(t) for name, t in templates.items()}
    with pytest.raises(ConfigError, match=message):
        resolve_analysis(analysis, parsed, where="strategy.canary.steps[1].analysis")


# --- templating -----------------------------------------------------------------------------------------


def test_placeholders_are_substituted_never_evaluated() -> None:
    assert (
        render_template("{{ service }}-{{args.max-p99-ms}}", {"service": "api"}, {"max-p99-ms": "5"})
        == "api-5"
    )
    with pytest.raises(TemplateError, match=r"unknown placeholder \{\{ver\}\}; use one of service"):
        render_template("{{ver}}", {"service": "api"}, {})
    with pytest.raises(TemplateError, match=r"unknown placeholder \{\{7\*7\}\}"):
        render_template("{{7*7}}", {"service": "api"}, {})
    with pytest.raises(TemplateError, match=r"unknown argument \{\{args.x\}\}; arguments given: y"):
        render_template("{{args.x}}", {}, {"y": "1"})
    with pytest.raises(TemplateError, match="unsupported template syntax"):
        render_template("{% if x %}", {}, {})


# --- validation before any rollout ------------------------------------------------------------------------


def prometheus_metric(**fields: object) -> Metric:
    base: dict[str, object] = {"name": "m", "provider": {"prometheus": {"query": "sum(up)"}}}
    return Metric.model_validate({**base, **fields})


def test_the_builtins_are_valid() -> None:
    for name, template in BUILTIN_TEMPLATES.items():
        args = {a.name: a.value or "1" for a in template.args}
        for metric in template.metrics:
            assert validate_metric(metric, args) == [], name


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"successCondition": "result[0] >="}, "successCondition: invalid syntax"),
        ({"failureCondition": "result.__class__"}, "failureCondition: the attribute '__class__'"),
        ({"successCondition": "result[0] > {{args.missing}}"}, "successCondition: unknown argument"),
        (
            {"provider": {"prometheus": {"query": "sum(rate(x[1m])"}}},
            "provider.prometheus.query: the PromQL is malformed: missing ')'",
        ),
        ({"provider": {"prometheus": {"query": 'up{job="a}'}}}, "unclosed string"),
        ({"provider": {"prometheus": {"query": 'sum(x{a="{{nope}}"})'}}}, "unknown placeholder {{nope}}"),
        ({"provider": {"prometheus": {"query": "  "}}}, "the query is empty"),
        (
            {"provider": {"judge": {"query": "sum(rate(x[1m]))"}}},
            "provider.judge.query: the judge's query must contain {{version}}",
        ),
        (
            {"provider": {"kubernetes": {"check": "ready"}}, "successCondition": "result > 1"},
            "successCondition: conditions are not used by the kubernetes provider",
        ),
        (
            {"provider": {"webhook": {"url": "ftp://x"}}},
            "provider.webhook.url: 'ftp://x' must start with http",
        ),
        ({"count": 3, "interval": 0}, "interval: an interval longer than 0s is needed"),
    ],
)
def test_validate_metric_names_the_field_at_fault(fields: dict[str, object], problem: str) -> None:
    problems = validate_metric(prometheus_metric(**fields))
    assert any(problem in p for p in problems), problems


def test_validate_metric_can_ask_prometheus_but_does_not_need_it() -> None:
    # nothing listens on port 1: the optional check is skipped, the local checks still run
    assert validate_metric(prometheus_metric(), prometheus_url="http://127.0.0.1:1") == []


BROKEN_PIPELINE = """\
service: api
analysisTemplates:
  error-rate:
    args:
      - name: limit
    metrics:
      - name: errors
        interval: 10s
        successCondition: result[0] < {{args.limit}}
        failureCondition: result[0] >=
        provider:
          prometheus:
            query: sum(rate(http_errors_total{service="{{service}}"}[1m])
strategy:
  canary:
    steps:
      - setWeight: 10
      - analysis:
          templates:
            - templateName: error-rate
              args:
                - name: limit
                  value: "5"
      - analysis:
          templates:
            - templateName: request-success-rate
              args:
                - name: min-success-rate
                  value: ninety
"""


def test_a_pipeline_with_broken_analysis_is_reported_by_file_line_and_key(tmp_path: Path) -> None:
    (tmp_path / "pipelines").mkdir()
    path = tmp_path / "pipelines" / "api.yaml"
    path.write_text(textwrap.dedent(BROKEN_PIPELINE))
    pipeline = Project(tmp_path).pipeline("api")  # the configuration itself is well-formed
    problems = validate_pipeline_analysis(pipeline)
    document = load_yaml(path, "pipelines/api.yaml")
    errors = [str(document.error(p.message, p.location)) for p in problems]
    assert errors[0].startswith(
        "pipelines/api.yaml:10: analysisTemplates.error-rate.metrics[0].failureCondition: invalid syntax"
    )
    assert errors[1].startswith(
        "pipelines/api.yaml:13: analysisTemplates.error-rate.metrics[0].provider.prometheus.query: "
        "the PromQL is malformed: missing ')' at the end"
    )
    # the template's own problems are not repeated at the step that uses it; a bad argument value is
    # reported where the step passes it
    assert len(errors) == 4, errors
    for error, field in zip(errors[2:], ("successCondition", "failureCondition"), strict=True):
        assert error.startswith("pipelines/api.yaml:26: strategy.canary.steps[2].analysis.templates[0]: ")
        assert f"metric 'request-success-rate': {field}: unknown name 'ninety'" in error
