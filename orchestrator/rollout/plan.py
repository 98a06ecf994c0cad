"""A rollout as a flat, numbered list of steps: what the engine executes and the store counts.

Waves run one after another. Inside a wave every cluster takes each step together. A canary wave starts the
canary, walks the configured steps and ends at 100 % canary traffic; only when every wave has passed does the
final Promote make the new version stable everywhere. Until then every cluster still has its stable pods, so a
failure anywhere rolls every touched cluster back by moving traffic alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.config import Environment
from orchestrator.config.pipeline import AnalysisStep, CanaryStep, Strategy


@dataclass(frozen=True)
class Deploy:
    """Apply the whole rendered set and wait (rolling update, or a first deployment)."""


@dataclass(frozen=True)
class StartCanary:
    """Create the canary workload at 0 % traffic and point the canary subset at it."""


@dataclass(frozen=True)
class SetWeight:
    weight: int


@dataclass(frozen=True)
class Pause:
    duration: float | None  # None: until approved


@dataclass(frozen=True)
class Analyze:
    analysis: AnalysisStep
    background: bool = False  # runs beside a wave's steps until the wave ends (strategy.canary.analysis)


@dataclass(frozen=True)
class SetHeaderRoute:
    name: str
    matches: tuple[tuple[str, str, str], ...]  # (header, exact|prefix|regex, value); empty: remove


@dataclass(frozen=True)
class SetMirror:
    name: str
    percentage: float


@dataclass(frozen=True)
class Promote:
    """Make the new version stable, return all traffic to stable, retire the canary."""

    scale_down_delay: float = 0.0  # seconds the retired canary keeps its pods after traffic left it


Action = Deploy | StartCanary | SetWeight | Pause | Analyze | SetHeaderRoute | SetMirror | Promote


@dataclass(frozen=True)
class PlannedStep:
    index: int
    wave: int  # -1: every cluster (the final promotion)
    clusters: tuple[str, ...]
    action: Action

    @property
    def label(self) -> str:
        action = self.action
        where = "all clusters" if self.wave < 0 else f"wave {self.wave + 1} ({', '.join(self.clusters)})"
        if isinstance(action, SetWeight):
            what = f"setWeight {action.weight}"
        elif isinstance(action, Pause):
            what = "pause until approved" if action.duration is None else f"pause {action.duration:g}s"
        elif isinstance(action, Analyze):
            names = [t.template_name for t in action.analysis.templates] + [
                m.name for m in action.analysis.metrics
            ]
            what = f"analysis {', '.join(names)}"
        elif isinstance(action, SetHeaderRoute):
            what = f"setHeaderRoute {action.name}"
        elif isinstance(action, SetMirror):
            what = f"setMirror {action.name} {action.percentage:g}%"
        else:
            what = type(action).__name__.replace("StartCanary", "start canary").lower()
        return f"{what} · {where}"


def _canary_actions(step: CanaryStep) -> Action:
    if step.set_weight is not None:
        return SetWeight(step.set_weight)
    if step.pause is not None:
        return Pause(step.pause.duration)
    if step.analysis is not None:
        return Analyze(step.analysis)
    if step.set_header_route is not None:
        route = step.set_header_route
        matches = tuple(
            (m.header_name, kind, value) for m in route.match for kind, value in m.header_value.items()
        )
        return SetHeaderRoute(route.name, matches)
    assert step.set_mirror is not None
    return SetMirror(step.set_mirror.name, 0.0 if step.set_mirror.remove else step.set_mirror.percentage)


def build_plan(strategy: Strategy, environment: Environment) -> list[PlannedStep]:
    waves = [[c.name for c in wave] for wave in environment.rollout_waves()]
    return plan_steps(strategy, waves, [c.name for c in environment.clusters])


def plan_steps(strategy: Strategy, wave_names: list[list[str]], clusters: list[str]) -> list[PlannedStep]:
    """The steps for waves of cluster names (what a deployment's frozen plan keeps) and every cluster."""
    waves = [tuple(wave) for wave in wave_names]
    everyone = tuple(clusters)
    actions_per_wave: list[Action]
    final: list[Action] = []
    if strategy.canary is not None:
        actions_per_wave = [StartCanary(), *(_canary_actions(s) for s in strategy.canary.steps)]
        if not any(isinstance(a, SetWeight) and a.weight == 100 for a in actions_per_wave):
            actions_per_wave.append(SetWeight(100))  # the implied last step
        final = [Promote(strategy.canary.scale_down_delay)]
    elif strategy.blue_green is not None:
        blue_green = strategy.blue_green
        actions_per_wave = [StartCanary()]  # the preview: the new version at 0 % traffic
        if blue_green.pre_promotion_analysis is not None:
            actions_per_wave.append(Analyze(blue_green.pre_promotion_analysis))
        if not blue_green.auto_promotion_enabled:
            actions_per_wave.append(Pause(None))
        elif blue_green.auto_promotion_seconds:
            actions_per_wave.append(Pause(blue_green.auto_promotion_seconds))
        actions_per_wave.append(SetWeight(100))  # the switch
        if blue_green.post_promotion_analysis is not None:
            actions_per_wave.append(Analyze(blue_green.post_promotion_analysis))
        final = [Promote(blue_green.scale_down_delay)]
    else:
        actions_per_wave = [Deploy()]
    steps: list[PlannedStep] = []
    for wave_index, wave in enumerate(waves):
        for action in actions_per_wave:
            steps.append(PlannedStep(len(steps), wave_index, wave, action))
    for action in final:
        steps.append(PlannedStep(len(steps), -1, everyone, action))
    return steps
