"""`pipelines/<service>.yaml`: how a service is built, rendered, promoted, rolled out and analysed."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, model_validator

from orchestrator.config.base import ConfigModel, DnsLabel, KeyProblem
from orchestrator.config.durations import Duration

DEFAULT_TEMPLATES: tuple[str, ...] = (
    "k8s/serviceaccount.yaml.j2",
    "k8s/service.yaml.j2",
    "k8s/deployment.yaml.j2",
    "k8s/hpa.yaml.j2",
    "k8s/pdb.yaml.j2",
    "istio/gateway.yaml.j2",
    "istio/destinationrule.yaml.j2",
    "istio/virtualservice.yaml.j2",
    "istio/virtualservice-crosscloud.yaml.j2",
    "istio/peerauthentication.yaml.j2",
    "istio/requestauthentication.yaml.j2",
    "istio/authorizationpolicy.yaml.j2",
)


class BuildConfig(ConfigModel):
    """Where the image comes from: a Docker build context inside the repository."""

    context: str = "."
    dockerfile: str = "Dockerfile"
    args: dict[str, str] = Field(default_factory=dict)
    target: str | None = None
    repository: str = Field(description="image repository path inside each registry, e.g. addtocloud/api")


# --- analysis (Argo Rollouts AnalysisTemplate semantics) -------------------------------------------


class PrometheusProvider(ConfigModel):
    address: str | None = Field(default=None, description="Prometheus URL; defaults to the environment's")
    query: str
    direct: Literal["request-success-rate", "request-duration-p99"] | None = Field(
        default=None,
        description="the same figure computed from scrapes of the mesh's /metrics when no Prometheus is set",
    )


class KubernetesProvider(ConfigModel):
    check: Literal["ready", "restarts", "progress"] = "ready"
    max_restarts: int = Field(default=0, ge=0)


class WebhookProvider(ConfigModel):
    url: str
    method: Literal["GET", "POST"] = "POST"
    headers: dict[str, str] = Field(default_factory=dict)
    body: dict[str, Any] | None = None
    timeout: Duration = 10.0


class EffectSize(ConfigModel):
    """Kayenta's effect size gate on the ratio of means, canary / stable, checked once a shift is significant.

    With the defaults (1.0) any significant shift counts, however small; 1.2 lets the canary be up to 20 %
    higher before it is High. A ratio that cannot be computed (either mean is 0) skips the gate, as in
    Kayenta.
    """

    allowed_increase: float = Field(default=1.0, ge=1.0, description="High only at this ratio or more")
    allowed_decrease: float = Field(default=1.0, gt=0, le=1.0, description="Low only at this ratio or less")
    critical_increase: float = Field(
        default=1.0, ge=1.0, description="a critical metric that is High scores 0 only at this ratio or more"
    )
    critical_decrease: float = Field(
        default=1.0,
        gt=0,
        le=1.0,
        description="a critical metric that is Low scores 0 only at this ratio or below",
    )


class JudgeMetric(ConfigModel):
    """One metric the judge compares: a PromQL query with {{version}}, sampled for canary and stable.

    `comparison: samples` (the default) is Kayenta's Mann-Whitney test of the two sample sets. For
    counters (errors per sample, mostly zeros) `comparison: rate` compares event rates instead: the
    canary's events against stable's, per unit of `total` (a second query with {{version}}, e.g. the
    requests) or per sample when `total` is not given.
    """

    name: str
    query: str = Field(description="PromQL with {{version}} for the version compared")
    direction: Literal["increase", "decrease", "either"] = Field(
        default="increase", description="which change is bad: increase (latency, errors), decrease, either"
    )
    critical: bool = Field(default=False, description="a failure of this metric scores the whole judgement 0")
    must_have_data: bool = Field(
        default=False, description="no data for this metric counts as a failure (Kayenta's mustHaveData)"
    )
    effect_size: EffectSize = Field(default_factory=EffectSize)
    comparison: Literal["samples", "rate"] = Field(
        default="samples", description="samples: Mann-Whitney U; rate: event rates, for counters"
    )
    total: str | None = Field(
        default=None, description="for comparison: rate, PromQL with {{version}} for the exposure (requests)"
    )

    @model_validator(mode="after")
    def _total_for_rates(self) -> JudgeMetric:
        if self.total is not None and self.comparison != "rate":
            raise ValueError("total is used only with comparison: rate")
        return self


class JudgeProvider(ConfigModel):
    """Canary against stable samples: Kayenta's Mann-Whitney classifier and weighted-sum scorer (the README
    lists where this differs from Kayenta).

    Either one `query` (+ `direction`) or a list of `metrics`.
    """

    address: str | None = None
    query: str | None = Field(default=None, description="PromQL with {{version}} for the version compared")
    direction: Literal["increase", "decrease", "either"] = "increase"
    effect_size: EffectSize = Field(
        default_factory=EffectSize, description="for `query`; metrics have their own"
    )
    metrics: list[JudgeMetric] = Field(default_factory=list)
    lookback: Duration = Field(default=60.0, description="how far back samples are taken")
    step: Duration = Field(default=1.0, description="time between two samples")
    tolerance: float = Field(default=0.25, ge=0, description="Kayenta's fraction of the estimated shift")
    confidence: float = Field(default=0.98, gt=0, lt=1, description="confidence level of the shift interval")
    pass_score: float = Field(default=95.0, ge=0, le=100)
    marginal_score: float = Field(default=75.0, ge=0, le=100)
    outliers: Literal["keep", "remove"] = Field(
        default="keep", description="keep (Kayenta's default) or remove values beyond Kayenta's IQR fences"
    )
    outlier_factor: float = Field(default=3.0, gt=0, description="the IQR multiple of the fences")

    @model_validator(mode="after")
    def _query_or_metrics(self) -> JudgeProvider:
        if (self.query is None) == (not self.metrics):
            raise ValueError("a judge names either one query or a list of metrics")
        if self.metrics and "effect_size" in self.model_fields_set:
            raise ValueError("with a list of metrics, effectSize goes on each metric")
        if self.marginal_score > self.pass_score:
            raise ValueError("marginalScore must not be higher than passScore")
        if self.step <= 0:
            raise ValueError("step must be longer than 0s")
        return self

    @property
    def judged_metrics(self) -> list[JudgeMetric]:
        """The metrics compared: the list, or the single query as a metric named 'query'."""
        if self.metrics:
            return list(self.metrics)
        return [
            JudgeMetric(
                name="query", query=self.query or "", direction=self.direction, effect_size=self.effect_size
            )
        ]


class MetricProvider(ConfigModel):
    prometheus: PrometheusProvider | None = None
    kubernetes: KubernetesProvider | None = None
    webhook: WebhookProvider | None = None
    judge: JudgeProvider | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> MetricProvider:
        chosen = [n for n in ("prometheus", "kubernetes", "webhook", "judge") if getattr(self, n)]
        if len(chosen) != 1:
            raise ValueError("a provider names exactly one of prometheus, kubernetes, webhook, judge")
        return self


class Metric(ConfigModel):
    """One metric of an analysis, with Argo Rollouts' fields and their defaults.

    `count: 0` means unset, as in Argo. `failureLimit: -1` disables the failure limit (then
    `consecutiveSuccessLimit` must be set); `consecutiveSuccessLimit: 0` (the default) disables that one.
    """

    name: str
    provider: MetricProvider
    interval: Duration = Field(default=10.0, description="between measurements; after an Error, 10s")
    initial_delay: Duration = Field(default=0.0, description="before the first measurement")
    count: int | None = Field(default=None, ge=0, description="measurements to take; 0 or absent: unset")
    success_condition: str | None = Field(default=None, description="e.g. result[0] >= 0.99")
    failure_condition: str | None = Field(default=None, description="e.g. result[0] < 0.95")
    failure_limit: int = Field(default=0, ge=-1, description="Failed measurements tolerated; -1 disables it")
    inconclusive_limit: int = Field(default=0, ge=0, description="Inconclusive measurements tolerated")
    consecutive_error_limit: int = Field(default=4, ge=0, description="Errors in a row tolerated")
    consecutive_success_limit: int = Field(
        default=0, ge=0, description="Successful in a row that complete the metric; 0 disables it"
    )

    @model_validator(mode="after")
    def _can_decide(self) -> Metric:
        # Argo Rollouts' ValidateMetric: refuse a metric whose limits its count can never reach.
        if self.failure_limit == -1 and self.consecutive_success_limit == 0:
            raise ValueError("failureLimit and consecutiveSuccessLimit cannot both be disabled")
        count = self.count or 0
        if count > 0:
            if self.failure_limit >= 0 and count < self.failure_limit + self.consecutive_success_limit:
                raise ValueError(
                    f"count ({count}) must be at least failureLimit + consecutiveSuccessLimit "
                    f"({self.failure_limit} + {self.consecutive_success_limit}), or the metric could "
                    "never fail"
                )
            if self.failure_limit < 0 and count < self.consecutive_success_limit:
                raise ValueError(
                    f"count ({count}) must be at least consecutiveSuccessLimit "
                    f"({self.consecutive_success_limit})"
                )
            if count < self.inconclusive_limit:
                raise ValueError(
                    f"count ({count}) must be at least inconclusiveLimit ({self.inconclusive_limit})"
                )
        return self


class DryRun(ConfigModel):
    """Argo Rollouts' dryRun rule: metrics whose name matches `metricName` (a regular expression, `.*`
    for all) are measured and recorded but never decide the analysis."""

    metric_name: str

    @model_validator(mode="after")
    def _a_pattern(self) -> DryRun:
        try:
            re.compile(self.metric_name)
        except re.error as exc:
            raise ValueError(f"metricName {self.metric_name!r} is not a regular expression: {exc}") from None
        return self


class AnalysisArg(ConfigModel):
    name: str
    value: str | None = None


class AnalysisTemplate(ConfigModel):
    args: list[AnalysisArg] = Field(default_factory=list)
    metrics: list[Metric] = Field(min_length=1)
    dry_run: list[DryRun] = Field(default_factory=list, description="metrics measured but never deciding")


# --- strategies --------------------------------------------------------------------------------------


class PauseStep(ConfigModel):
    duration: Duration | None = Field(default=None, description="absent: wait until approved")


class AnalysisRef(ConfigModel):
    template_name: str
    args: list[AnalysisArg] = Field(default_factory=list)


class AnalysisStep(ConfigModel):
    templates: list[AnalysisRef] = Field(default_factory=list)
    metrics: list[Metric] = Field(default_factory=list, description="inline metrics")
    dry_run: list[DryRun] = Field(default_factory=list, description="metrics measured but never deciding")

    @model_validator(mode="after")
    def _something(self) -> AnalysisStep:
        if not self.templates and not self.metrics:
            raise ValueError("an analysis step names templates or inline metrics")
        return self


class HeaderMatch(ConfigModel):
    header_name: str
    header_value: dict[Literal["exact", "prefix", "regex"], str]


class HeaderRouteStep(ConfigModel):
    name: str
    match: list[HeaderMatch] = Field(default_factory=list, description="empty: remove the route")


class MirrorStep(ConfigModel):
    name: str
    percentage: float = Field(default=100.0, ge=0, le=100)
    remove: bool = False


class CanaryStep(ConfigModel):
    set_weight: int | None = Field(default=None, ge=0, le=100)
    pause: PauseStep | None = None
    analysis: AnalysisStep | None = None
    set_header_route: HeaderRouteStep | None = None
    set_mirror: MirrorStep | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> CanaryStep:
        chosen = [
            name
            for name in ("set_weight", "pause", "analysis", "set_header_route", "set_mirror")
            if getattr(self, name) is not None
        ]
        if len(chosen) != 1:
            raise ValueError("a step is exactly one of setWeight, pause, analysis, setHeaderRoute, setMirror")
        return self


class CanaryStrategy(ConfigModel):
    steps: list[CanaryStep] = Field(default_factory=list)
    analysis: AnalysisStep | None = Field(
        default=None, description="background analysis for the whole rollout"
    )
    scale_down_delay: Duration = 0.0

    @model_validator(mode="after")
    def _weights_non_decreasing(self) -> CanaryStrategy:
        last = 0
        for index, step in enumerate(self.steps):
            if step.set_weight is not None:
                if step.set_weight < last:
                    raise KeyProblem(
                        f"setWeight {step.set_weight} is lower than an earlier weight {last}; "
                        "weights must not decrease",
                        "steps",
                        index,
                        "setWeight",
                    )
                last = step.set_weight
        return self


class BlueGreenStrategy(ConfigModel):
    auto_promotion_enabled: bool = True
    auto_promotion_seconds: Duration = 0.0
    scale_down_delay: Duration = 30.0
    pre_promotion_analysis: AnalysisStep | None = None
    post_promotion_analysis: AnalysisStep | None = None


class RollingStrategy(ConfigModel):
    max_surge: int | str = "25%"
    max_unavailable: int | str = "25%"


class Strategy(ConfigModel):
    canary: CanaryStrategy | None = None
    blue_green: BlueGreenStrategy | None = None
    rolling: RollingStrategy | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Strategy:
        chosen = [n for n in ("canary", "blue_green", "rolling") if getattr(self, n) is not None]
        if len(chosen) != 1:
            raise ValueError("a strategy is exactly one of canary, blueGreen, rolling")
        return self

    @property
    def name(self) -> str:
        if self.canary is not None:
            return "canary"
        if self.blue_green is not None:
            return "blueGreen"
        return "rolling"


_VARIABLE = r"^[A-Za-z_][A-Za-z0-9_]*$"


class CloudflarePurge(ConfigModel):
    """The seed's CDN: purge Cloudflare's cache for the hosts the service serves (its public routes)."""

    zone_id: str = Field(pattern=r"^[0-9a-f]{32}$", description="the zone's id (32 hex characters)")
    token_env: str = Field(
        default="CLOUDFLARE_API_TOKEN", pattern=_VARIABLE, description="variable holding an API token"
    )
    api_url: str = Field(default="https://api.cloudflare.com", pattern=r"^https?://")
    hosts: list[str] | None = Field(
        default=None, description="default: the hosts of the service's VirtualServices bound to a gateway"
    )


class Hook(ConfigModel):
    """A webhook called at a point of the rollout (Flagger's hooks): POST of the deployment as JSON, signed
    `X-Signature: sha256=<hex>` when `secretEnv` is set; or the built-in Cloudflare cache purge."""

    name: DnsLabel
    url: str | None = Field(default=None, pattern=r"^https?://")
    url_env: str | None = Field(default=None, pattern=_VARIABLE, description="variable holding the URL")
    secret_env: str | None = Field(default=None, pattern=_VARIABLE, description="HMAC SHA-256 key's variable")
    timeout: Duration = Field(default=10.0, description="per attempt")
    cloudflare_purge: CloudflarePurge | None = None

    @model_validator(mode="after")
    def _one_target(self) -> Hook:
        given = [
            k
            for k, v in (
                ("url", self.url),
                ("urlEnv", self.url_env),
                ("cloudflarePurge", self.cloudflare_purge),
            )
            if v
        ]
        if len(given) != 1:
            raise ValueError(
                "a hook names exactly one of url, urlEnv or cloudflarePurge"
                + (f" (got {', '.join(given)})" if given else "")
            )
        return self


class Hooks(ConfigModel):
    pre_rollout: list[Hook] = Field(
        default_factory=list,
        description="before anything is committed or applied; a failure (not 2xx after 3 tries) stops it",
    )
    post_rollout: list[Hook] = Field(
        default_factory=list, description="after the rollout ends, whatever its outcome"
    )
    post_promotion: list[Hook] = Field(default_factory=list, description="after the release Succeeded")

    @model_validator(mode="after")
    def _purge_after_promotion(self) -> Hooks:
        for index, hook in enumerate(self.pre_rollout):
            if hook.cloudflare_purge is not None:
                raise KeyProblem(
                    "a cache purge belongs in postPromotion", "preRollout", index, "cloudflarePurge"
                )
        return self


class Pipeline(ConfigModel):
    """One service's pipeline; the file name (without .yaml) is the service name."""

    service: DnsLabel
    description: str = ""
    build: BuildConfig | None = None
    templates: list[str] = Field(default_factory=lambda: list(DEFAULT_TEMPLATES))
    promotion: list[DnsLabel] | list[list[DnsLabel]] = Field(
        default_factory=list,
        description="environments in promotion order: one path, or a list of paths; an environment is on one "
        "path at most",
    )
    values: dict[str, Any] = Field(default_factory=dict)
    strategy: Strategy = Field(default_factory=lambda: Strategy(rolling=RollingStrategy()))
    analysis_templates: dict[str, AnalysisTemplate] = Field(default_factory=dict)
    hooks: Hooks = Field(default_factory=Hooks)

    @model_validator(mode="after")
    def _each_environment_on_one_path(self) -> Pipeline:
        # A release moves along one path; an environment on two would have two "previous" environments.
        seen: set[str] = set()
        for path, position in self._positions():
            name = self.promotion_paths[path][position]
            if name in seen:
                location = ("promotion", path, position) if self._nested() else ("promotion", position)
                raise KeyProblem(f"environment {name!r} is on the promotion paths twice", *location)
            seen.add(name)
        return self

    def _nested(self) -> bool:
        return bool(self.promotion) and isinstance(self.promotion[0], list)

    def _positions(self) -> list[tuple[int, int]]:
        return [(p, i) for p, path in enumerate(self.promotion_paths) for i in range(len(path))]

    @property
    def promotion_paths(self) -> list[list[str]]:
        """Each promotion path, in order (a flat `promotion:` list is one path)."""
        if self._nested():
            return [list(path) for path in self.promotion if isinstance(path, list)]
        return [[name for name in self.promotion if isinstance(name, str)]] if self.promotion else []

    @property
    def promotion_environments(self) -> list[str]:
        """Every environment of the promotion paths, path by path."""
        return [name for path in self.promotion_paths for name in path]

    def promotion_location(self, environment: str) -> tuple[str | int, ...]:
        """Where `environment` is written under `promotion:` (for errors about it)."""
        for path, position in self._positions():
            if self.promotion_paths[path][position] == environment:
                return ("promotion", path, position) if self._nested() else ("promotion", position)
        return ("promotion",)

    def promotion_path(self, environment: str) -> list[str] | None:
        """The promotion path `environment` is on, if any."""
        return next((path for path in self.promotion_paths if environment in path), None)
