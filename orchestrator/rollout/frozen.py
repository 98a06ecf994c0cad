"""The plan of a deployment, fixed when it is created: strategy, analysis, waves and rendered manifests.

Stored in the deployment's `plan` column and read once per run, so editing a pipeline, an environment's
waves or a template while a rollout is paused changes nothing of it: the approved rollout goes on exactly as
it was planned (a new `deploy` picks the edit up). Connection settings are not frozen: a cluster's
credentials may be rotated mid-rollout, and the engine reads them from the environment when it connects.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from orchestrator.config import Pipeline
from orchestrator.config.pipeline import Strategy
from orchestrator.errors import OrchestratorError
from orchestrator.render.manifests import RenderedSet
from orchestrator.rollout.plan import PlannedStep, plan_steps

_RENDERED_FIELDS = tuple(f.name for f in dataclasses.fields(RenderedSet))


class FrozenPlan(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    pipeline: dict[str, Any]  # the pipeline as it was (its analysis templates are what the gates run)
    strategy: dict[str, Any]  # the strategy in force (the pipeline's, or rolling when forced)
    waves: list[list[str]]  # cluster names per wave
    sets: list[dict[str, Any]]  # one rendered set per cluster

    @classmethod
    def freeze(
        cls, pipeline: Pipeline, strategy: Strategy, waves: list[list[str]], sets: list[RenderedSet]
    ) -> FrozenPlan:
        return cls(
            # Only what was written: defaults filled in by validation need not validate again.
            pipeline=pipeline.model_dump(mode="json", by_alias=True, exclude_unset=True),
            strategy=strategy.model_dump(mode="json", by_alias=True, exclude_unset=True),
            waves=waves,
            sets=[{name: getattr(s, name) for name in _RENDERED_FIELDS} for s in sets],
        )

    @classmethod
    def from_record(cls, record: dict[str, Any] | None, *, deployment: object) -> FrozenPlan:
        if record is None:
            raise OrchestratorError(
                f"deployment {deployment} was created before plans were frozen; it cannot be resumed "
                "(abort it, and deploy again)"
            )
        try:
            return cls.model_validate(record)
        except ValidationError as exc:
            raise OrchestratorError(f"deployment {deployment}: its stored plan is not valid: {exc}") from None

    def to_record(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def with_sets(self, sets: list[RenderedSet]) -> FrozenPlan:
        """The same plan rolling out these sets (the desired state as read back from its commit)."""
        return self.model_copy(
            update={"sets": [{name: getattr(s, name) for name in _RENDERED_FIELDS} for s in sets]}
        )

    def the_pipeline(self) -> Pipeline:
        return Pipeline.model_validate(self.pipeline)

    def the_strategy(self) -> Strategy:
        return Strategy.model_validate(self.strategy)

    def rendered(self) -> dict[str, RenderedSet]:
        sets = [RenderedSet(**{k: v for k, v in s.items() if k in _RENDERED_FIELDS}) for s in self.sets]
        return {s.cluster: s for s in sets}

    def steps(self) -> list[PlannedStep]:
        everyone = [s["cluster"] for s in self.sets]
        return plan_steps(self.the_strategy(), self.waves, everyone)
