"""What the deployment page draws, from a deployment's detail view (the REST API's shape)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from orchestrator.server.dashboard import charts
from orchestrator.server.dashboard.deployment import available


def _event(seq: int, kind: str, second: int, **fields: Any) -> dict[str, Any]:
    return {
        "seq": seq,
        "type": kind,
        "step": fields.pop("step", None),
        "cluster": fields.pop("cluster", None),
        "message": fields.pop("message", ""),
        "data": fields.pop("data", None),
        "actor": "dev@example.com",
        "created_at": f"2026-12-02T06:00:{second:02d}+00:00",
    }


START = datetime(2026, 12, 2, 6, 0, tzinfo=UTC).timestamp()
STEPS = [
    {"index": 0, "wave": 0, "clusters": ["aws"], "label": "start canary · wave 1 (aws)", "state": "done"},
    {"index": 1, "wave": 0, "clusters": ["aws"], "label": "setWeight 20 · wave 1 (aws)", "state": "done"},
    {
        "index": 2,
        "wave": 0,
        "clusters": ["aws"],
        "label": "analysis request-success-rate · wave 1 (aws)",
        "state": "pending",
    },
    {
        "index": 3,
        "wave": 1,
        "clusters": ["azure"],
        "label": "setWeight 20 · wave 2 (azure)",
        "state": "pending",
    },
]


def _rolled_back() -> dict[str, Any]:
    failed = {
        "metric": "request-success-rate",
        "phase": "Failed",
        "value": [70.0],
        "message": "failure condition met: result[0] < 99",
        "finishedAt": "2026-12-02T06:00:20+00:00",
        "source": "direct",
        "details": {"stable": [100.0]},
    }
    events = [
        _event(1, "created", 0),
        _event(2, "step_completed", 2, step=0, data={"writes": {"aws": 2}, "skipped": False}),
        _event(3, "step_completed", 3, step=1, data={"writes": {"aws": 1}, "skipped": False}),
        _event(4, "measurement", 20, step=2, cluster="aws", data=failed),
        _event(5, "phase", 21, step=2, data={"to": "RolledBack", "rolled_back": ["aws"], "weights": {}}),
    ]
    return {
        "phase": "RolledBack",
        "created_at": "2026-12-02T06:00:00+00:00",
        "clusters": [{"cluster": "aws"}, {"cluster": "azure"}],
        "steps": STEPS,
        "events": events,
        "measurements": [e for e in events if e["type"] == "measurement"],
    }


def test_traffic_follows_the_completed_steps_and_the_rollback() -> None:
    detail = _rolled_back()
    points = charts.traffic(detail)["points"]
    aws = [(p["t"] - START, p["weight"]) for p in points if p["cluster"] == "aws"]
    assert aws == [(0, 0), (2, 0), (3, 20), (21, 0)]
    drawn = charts.chart_data(detail)["charts"]
    traffic = drawn[0]
    assert traffic["id"] == "traffic" and traffic["span"] == [START, START + 21 + 1.05]  # 5 % room after
    assert traffic["x"][-1] == START + 21 + 1.05  # the weights are carried to the span's end
    by_label = {s["label"]: s["values"] for s in traffic["series"]}
    assert by_label == {"aws": [0, 0, 20, 0, 0], "azure": [0, 0, 0, 0, 0]}  # azure was never reached


def test_a_gate_draws_canary_against_stable_with_the_threshold_it_applied() -> None:
    [gate] = charts.gates(_rolled_back())
    assert gate["metric"] == "request-success-rate" and gate["step"] == 2
    assert gate["threshold"] == {"op": "<", "value": 99.0}
    assert [(p["cluster"], p["canary"], p["stable"], p["phase"]) for p in gate["points"]] == [
        ("aws", 70.0, 100.0, "Failed")
    ]
    drawn = charts.chart_data(_rolled_back())["charts"][1]
    assert {s["label"]: s["values"] for s in drawn["series"]} == {"aws canary": [70.0], "aws stable": [100.0]}


def test_a_window_without_requests_is_a_gap_not_a_zero() -> None:
    detail = _rolled_back()
    detail["measurements"][0]["data"]["value"] = [float("nan")]
    [gate] = charts.gates(detail)
    assert gate["points"][0]["canary"] is None


def test_judge_measurements_are_verdicts_not_series() -> None:
    detail = _rolled_back()
    judged = {
        "metric": "judge",
        "phase": "Failed",
        "value": 40.0,
        "message": "score 40 (fail; pass >= 95, marginal >= 75)",
        "source": "judge",
        "details": {"metrics": [{"name": "p99", "classification": "High"}]},
    }
    detail["measurements"] = [_event(9, "measurement", 30, step=2, cluster="aws", data=judged)]
    assert charts.gates(detail) == []
    [verdict] = charts.verdicts(detail)
    assert verdict["score"] == 40.0 and verdict["phase"] == "Failed"
    assert verdict["metrics"][0]["classification"] == "High"


def test_controls_follow_the_transition_table() -> None:
    def phase(name: str, current: str | None = None) -> dict[str, Any]:
        steps = [{"label": current, "state": "current"}] if current else []
        return {"phase": name, "steps": steps}

    assert available(phase("RolledBack")) == {
        "approve": False,
        "approve_full": False,
        "abort": False,
        "retry": True,
        "rollback": False,
    }
    assert available(phase("Succeeded"))["rollback"] and not available(phase("Succeeded"))["abort"]
    assert available(phase("AwaitingApproval"))["approve"]
    assert not available(phase("AwaitingApproval"))["approve_full"]  # starting is not skipping analyses
    paused = available(phase("Paused"))
    assert paused["approve"] and paused["approve_full"] and paused["abort"] and not paused["retry"]
    assert available(phase("Progressing", "pause 30s · wave 1 (aws)"))["approve"]
    assert not available(phase("Progressing", "setWeight 20 · wave 1 (aws)"))["approve"]


def test_a_latency_gate_that_passed_is_drawn_with_its_threshold_too() -> None:
    # The built-in p99 gate: a success condition (result under a ceiling), milliseconds, both versions.
    detail = _rolled_back()
    passed = {
        "metric": "request-duration-p99",
        "phase": "Successful",
        "value": [212.5],
        "message": "success condition met: result[0] <= 500",
        "finishedAt": "2026-12-02T06:00:15+00:00",
        "source": "prometheus",
        "details": {"stable": [198.0]},
    }
    detail["measurements"] = [_event(7, "measurement", 15, step=2, cluster="aws", data=passed)]
    [gate] = charts.gates(detail)
    assert (gate["metric"], gate["threshold"]) == ("request-duration-p99", {"op": "<=", "value": 500.0})
    [drawn] = [c for c in charts.chart_data(detail)["charts"] if c.get("threshold")]
    assert drawn["threshold"] == {"op": "<=", "value": 500.0}
    assert {s["label"]: s["values"] for s in drawn["series"]} == {
        "aws canary": [212.5],
        "aws stable": [198.0],
    }
