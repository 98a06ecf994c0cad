"""Health gates: analysis providers behind one interface, and the analysis run that applies Argo's rules.

The rollout engine's entry points:

    resolved = resolve_analysis(step, pipeline.analysis_templates)      # templates + args → metrics
    context = AnalysisContext(service=..., namespace=..., canary_version=..., args=resolved.args, ...)
    outcome = run_analysis(resolved.metrics, context, on_measurement=store_it, stop=...)
    outcome.phase  # Successful | Failed | Inconclusive | Error  (treat Error like Failed)

and, before anything is applied, `validate_pipeline_analysis(pipeline)` (problems located by file keys).
"""

from orchestrator.analysis.base import AnalysisContext, Clock, Measurement, MetricProvider, SystemClock
from orchestrator.analysis.conditions import ConditionSyntaxError, assess_result, parse_condition
from orchestrator.analysis.phases import AnalysisPhase
from orchestrator.analysis.registry import PROVIDERS, make_provider, provider_name
from orchestrator.analysis.run import (
    AnalysisOutcome,
    AnalysisRun,
    MetricResult,
    Siblings,
    effective_count,
    run_analysis,
)
from orchestrator.analysis.templates import (
    BUILTIN_TEMPLATES,
    ResolvedAnalysis,
    find_template,
    resolve_analysis,
)
from orchestrator.analysis.validation import (
    AnalysisProblem,
    validate_metric,
    validate_pipeline_analysis,
    validate_step,
)

__all__ = [
    "BUILTIN_TEMPLATES",
    "PROVIDERS",
    "AnalysisContext",
    "AnalysisOutcome",
    "AnalysisPhase",
    "AnalysisProblem",
    "AnalysisRun",
    "Clock",
    "ConditionSyntaxError",
    "Measurement",
    "MetricProvider",
    "MetricResult",
    "ResolvedAnalysis",
    "Siblings",
    "SystemClock",
    "assess_result",
    "effective_count",
    "find_template",
    "make_provider",
    "parse_condition",
    "provider_name",
    "resolve_analysis",
    "run_analysis",
    "validate_metric",
    "validate_pipeline_analysis",
    "validate_step",
]
