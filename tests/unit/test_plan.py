"""A strategy becomes a numbered plan: waves in order, an implied 100 %, one final promotion."""

from __future__ import annotations

import json

from orchestrator.config import Project
from orchestrator.config.pipeline import BlueGreenStrategy, RollingStrategy, Strategy
from orchestrator.render.engine import Renderer
from orchestrator.rollout.frozen import FrozenPlan
from orchestrator.rollout.plan import Analyze, Deploy, Pause, Promote, SetWeight, StartCanary, build_plan
from tests.helpers import REPO


def test_canary_plan_runs_each_wave_then_promotes_everywhere() -> None:
    project = Project(REPO)
    plan = build_plan(project.pipeline("api").strategy, project.environment("local"))
    per_wave = [StartCanary, SetWeight, Analyze, SetWeight, Pause, SetWeight, Pause, SetWeight]
    assert [type(s.action) for s in plan] == per_wave + per_wave + [Promote]
    assert [s.index for s in plan] == list(range(len(plan)))
    assert {s.clusters for s in plan[:8]} == {("aws",)}
    assert {s.clusters for s in plan[8:16]} == {("azure", "gcp")}
    assert plan[7].action == SetWeight(100)  # implied
    assert plan[-1].wave == -1 and plan[-1].clusters == ("aws", "azure", "gcp")
    assert plan[1].label == "setWeight 10 · wave 1 (aws)"


def test_blue_green_and_rolling_plans() -> None:
    environment = Project(REPO).environment("prod")
    blue_green = build_plan(Strategy(blue_green=BlueGreenStrategy(auto_promotion_enabled=False)), environment)
    assert [type(s.action) for s in blue_green[:3]] == [StartCanary, Pause, SetWeight]
    assert blue_green[-1].action == Promote(30.0)
    rolling = build_plan(Strategy(rolling=RollingStrategy()), environment)
    assert [(type(s.action), s.clusters) for s in rolling] == [
        (Deploy, ("aws",)),
        (Deploy, ("azure",)),
        (Deploy, ("gcp",)),
    ]


def test_a_frozen_plan_reads_back_as_it_was_frozen() -> None:
    """What a deployment stores is what it later drives: the same pipeline, strategy, steps and manifests."""
    project = Project(REPO)
    environment = project.environment("local")
    renderer = Renderer(project)
    for service in project.service_names:
        pipeline = project.pipeline(service)
        sets = renderer.render_environment(pipeline, environment)
        waves = [[c.name for c in wave] for wave in environment.rollout_waves()]
        frozen = FrozenPlan.freeze(pipeline, pipeline.strategy, waves, sets)
        stored = FrozenPlan.from_record(json.loads(json.dumps(frozen.to_record())), deployment="d")
        assert stored.the_pipeline() == pipeline
        assert stored.steps() == build_plan(pipeline.strategy, environment)
        assert {c: s.manifest_hash for c, s in stored.rendered().items()} == {
            s.cluster: s.manifest_hash for s in sets
        }
