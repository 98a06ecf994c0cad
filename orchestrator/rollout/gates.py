"""Analysis steps of a strategy: checked before anything is applied, run against a wave's clusters."""

from __future__ import annotations

from orchestrator.config import Project
from orchestrator.config.pipeline import AnalysisStep, Strategy
from orchestrator.errors import ConfigError


def analysis_steps(strategy: Strategy) -> list[AnalysisStep]:
    steps: list[AnalysisStep] = []
    if strategy.canary is not None:
        steps += [s.analysis for s in strategy.canary.steps if s.analysis is not None]
        if strategy.canary.analysis is not None:
            steps.append(strategy.canary.analysis)
    if strategy.blue_green is not None:
        for step in (strategy.blue_green.pre_promotion_analysis, strategy.blue_green.post_promotion_analysis):
            if step is not None:
                steps.append(step)
    return steps


def validate_strategy_analysis(project: Project, strategy: Strategy) -> None:
    """Every analysis the strategy names must exist and parse; exit 2 before any cluster is touched."""
    for step in analysis_steps(strategy):
        for ref in step.templates:
            known = known_template_names(project, strategy)
            if ref.template_name not in known:
                listing = ", ".join(sorted(known))
                raise ConfigError(
                    f"unknown analysis template {ref.template_name!r}; known templates: {listing}"
                )


BUILT_IN_TEMPLATES = ("request-success-rate", "request-duration-p99")


def known_template_names(project: Project, strategy: Strategy) -> set[str]:
    names = set(BUILT_IN_TEMPLATES)
    for service in project.service_names:
        pipeline = project.pipeline(service)
        if pipeline.strategy is strategy:
            names |= set(pipeline.analysis_templates)
    return names
