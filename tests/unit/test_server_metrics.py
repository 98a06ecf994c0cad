"""Step and gate durations as `/metrics` derives them from a deployment's audit trail."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from orchestrator.server.metrics import TrailDurations

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _durations() -> tuple[TrailDurations, CollectorRegistry]:
    registry = CollectorRegistry()
    # No database behind it: the trail is fed by hand (catch_up reads the same rows from the store).
    return TrailDurations(sessionmaker(create_engine("sqlite://")), registry), registry


def _feed(trail: TrailDurations, deployment: uuid.UUID, *events: tuple[str, int | None, dict, float]) -> None:
    for kind, step, data, seconds in events:
        trail._observe(deployment, kind, step, data, T0 + timedelta(seconds=seconds))


def test_steps_count_from_their_start_and_gates_by_outcome() -> None:
    trail, registry = _durations()
    passed, failed = uuid.uuid4(), uuid.uuid4()
    _feed(
        trail,
        passed,
        ("phase", None, {"to": "Progressing"}, 0),
        ("step_completed", 0, {}, 2),  # start canary: 2 s
        ("step_started", 1, {}, 2.5),
        ("measurement", 1, {}, 10),
        ("step_completed", 1, {}, 12.5),  # the analysis: 10 s, passed
        ("phase", None, {"to": "Succeeded"}, 13),
    )
    _feed(
        trail,
        failed,
        ("phase", None, {"to": "Progressing"}, 0),
        ("step_started", 0, {}, 1),
        ("measurement", 0, {}, 4),
        ("phase", None, {"to": "RolledBack"}, 7),  # the gate failed after 6 s
    )
    sample = registry.get_sample_value
    assert sample("orchestrator_step_duration_seconds_count") == 2
    assert sample("orchestrator_step_duration_seconds_sum") == 12.0
    assert sample("orchestrator_gate_duration_seconds_sum", {"outcome": "passed"}) == 10.0
    assert sample("orchestrator_gate_duration_seconds_sum", {"outcome": "failed"}) == 6.0
    assert trail._rollouts == {}  # finished deployments are forgotten


def test_an_inconclusive_gate_pauses_and_a_resumed_step_restarts_its_clock() -> None:
    trail, registry = _durations()
    deployment = uuid.uuid4()
    _feed(
        trail,
        deployment,
        ("phase", None, {"to": "Progressing"}, 0),
        ("step_completed", 0, {}, 1),
        ("measurement", 1, {}, 3),
        ("phase", None, {"to": "Paused"}, 5),  # inconclusive: 4 s since the previous step ended
        ("phase", None, {"to": "Progressing"}, 100),  # approved
        ("step_completed", 1, {}, 101),
    )
    sample = registry.get_sample_value
    assert sample("orchestrator_gate_duration_seconds_sum", {"outcome": "inconclusive"}) == 4.0
    assert sample("orchestrator_step_duration_seconds_sum") == 2.0  # 1 s, then 1 s after the approval


def test_a_rollout_is_timed_from_its_start_to_the_phase_it_ended_in() -> None:
    trail, registry = _durations()
    started = T0
    trail._ended("prod", started, "Progressing", T0 + timedelta(seconds=5))  # not an end
    trail._ended("prod", None, "Aborted", T0 + timedelta(seconds=6))  # never started: not a rollout
    trail._ended("prod", started, "Succeeded", T0 + timedelta(seconds=90))
    trail._ended("prod", started, "RolledBack", T0 + timedelta(seconds=30))
    sample = registry.get_sample_value
    name = "orchestrator_rollout_duration_seconds"
    assert sample(f"{name}_sum", {"environment": "prod", "phase": "Succeeded"}) == 90.0
    assert sample(f"{name}_bucket", {"environment": "prod", "phase": "Succeeded", "le": "60.0"}) == 0.0
    assert sample(f"{name}_bucket", {"environment": "prod", "phase": "Succeeded", "le": "120.0"}) == 1.0
    assert sample(f"{name}_sum", {"environment": "prod", "phase": "RolledBack"}) == 30.0
    assert sample(f"{name}_count", {"environment": "prod", "phase": "Aborted"}) is None
    assert sample(f"{name}_count", {"environment": "prod", "phase": "Progressing"}) is None


def test_labelled_series_start_at_zero_so_increase_counts_their_first_event() -> None:
    trail, registry = _durations()
    trail.prepare(["local", "prod"])
    sample = registry.get_sample_value
    for outcome in ("passed", "failed", "inconclusive"):
        assert sample("orchestrator_gate_duration_seconds_count", {"outcome": outcome}) == 0.0
    for environment in ("local", "prod"):
        for phase in ("Succeeded", "RolledBack", "Failed", "Aborted"):
            labels = {"environment": environment, "phase": phase}
            assert sample("orchestrator_rollout_duration_seconds_count", labels) == 0.0
