"""What the deployment page draws, read from the deployment's audit trail and frozen plan (the detail view
`server/details.py` builds), never from a second record:

- `traffic`: each cluster's canary weight over time. A completed `setWeight N` step puts its clusters at N,
  `start canary` at 0, the final promotion every cluster back at 0 (the new version is then stable); a
  rollback (the phase event to RolledBack, Aborted or Failed) puts the clusters it names back at 0, or at
  the weight it recorded for a cluster it could not finish.
- `gates`: per analysis metric, each measurement's canary figure per cluster, the stable's figure beside it
  when the provider measured one (`details.stable`), and the threshold the condition applied (read from the
  measurement's own message, `result[0] < 99`, so it is the one in force, arguments filled in).
- `verdicts`: the judge's measurements: score, phase and each metric's classification.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any

from orchestrator.store.models import Phase

_THRESHOLD = re.compile(r"result\[0\]\s*(>=|<=|>|<)\s*(-?\d+(?:\.\d+)?)")
_ROLLED_BACK = {Phase.ROLLED_BACK.value, Phase.ABORTED.value, Phase.FAILED.value}


def _seconds(moment: str | None) -> float | None:
    return datetime.fromisoformat(moment).timestamp() if moment else None


def _step_weight(label: str) -> int | None:
    """The canary weight a completed step leaves its clusters at (None: the step does not move traffic)."""
    what = label.split(" · ", 1)[0]
    if what.startswith("setWeight "):
        return int(what.removeprefix("setWeight "))
    if what in ("start canary", "promote"):
        return 0
    return None


def traffic(detail: dict[str, Any]) -> dict[str, Any]:
    """{clusters: [names], points: [{t, cluster, weight}]} in time order, starting from the clusters'
    recorded weight 0 when the deployment was created."""
    steps = {s["index"]: s for s in detail["steps"]}
    clusters = [c["cluster"] for c in detail["clusters"]]
    points: list[dict[str, Any]] = []
    start = _seconds(detail.get("created_at"))
    if start is not None:
        points += [{"t": start, "cluster": name, "weight": 0} for name in clusters]
    for event in detail["events"]:
        moment = _seconds(event["created_at"])
        data = event.get("data") or {}
        if event["type"] == "step_completed" and event["step"] in steps and not data.get("skipped"):
            step = steps[event["step"]]
            weight = _step_weight(step["label"])
            if weight is not None:
                points += [{"t": moment, "cluster": name, "weight": weight} for name in step["clusters"]]
        elif event["type"] == "phase" and data.get("to") in _ROLLED_BACK:
            for name in data.get("rolled_back") or []:
                points.append({"t": moment, "cluster": name, "weight": 0})
            for name, weight in (data.get("weights") or {}).items():
                if isinstance(weight, int):
                    points.append({"t": moment, "cluster": name, "weight": weight})
    return {"clusters": clusters, "points": points}


def _first(value: Any) -> float | None:
    """The first number of a measured vector; None for none, NaN or infinity (not drawable)."""
    if isinstance(value, list) and value and isinstance(value[0], int | float):
        number = float(value[0])
        return number if math.isfinite(number) else None
    return None


def gates(detail: dict[str, Any]) -> list[dict[str, Any]]:
    """[{metric, step, threshold: {op, value} | None, points: [{t, cluster, canary, stable, phase}]}]."""
    found: dict[tuple[int | None, str], dict[str, Any]] = {}
    for event in detail["measurements"]:
        data = event.get("data") or {}
        if data.get("source") == "judge":
            continue  # a score, not a figure over time: shown as a verdict
        metric = str(data.get("metric") or "measurement")
        gate = found.setdefault(
            (event["step"], metric),
            {"metric": metric, "step": event["step"], "threshold": None, "points": []},
        )
        matched = _THRESHOLD.search(str(data.get("message") or ""))
        if matched and gate["threshold"] is None:
            gate["threshold"] = {"op": matched.group(1), "value": float(matched.group(2))}
        details = data.get("details") or {}
        gate["points"].append(
            {
                "t": _seconds(data.get("finishedAt") or event["created_at"]),
                "cluster": event["cluster"],
                "canary": _first(data.get("value")),
                "stable": _first(details.get("stable")),
                "phase": data.get("phase"),
            }
        )
    return list(found.values())


def verdicts(detail: dict[str, Any]) -> list[dict[str, Any]]:
    """The judge's judgements, newest last: cluster, step, phase, score, message and per-metric results."""
    judged = []
    for event in detail["measurements"]:
        data = event.get("data") or {}
        if data.get("source") != "judge":
            continue
        value = data.get("value")
        judged.append(
            {
                "cluster": event["cluster"],
                "step": event["step"],
                "phase": data.get("phase"),
                "score": value if isinstance(value, int | float) else _first(value),
                "message": data.get("message") or event["message"],
                "metrics": (data.get("details") or {}).get("metrics") or [],
            }
        )
    return judged


Rows = dict[str, dict[float, float | None]]  # series label -> {x: value}


def _aligned(times: list[float], rows: Rows, *, carry: bool) -> dict[str, Any]:
    """uPlot's shape: one x axis (seconds) and, per series, a value at each x (carried forward for a
    stepped series, null where a series has no sample otherwise)."""
    xs = sorted(set(times))
    series = []
    for label, values in rows.items():
        column: list[float | None] = []
        last: float | None = None
        for x in xs:
            if x in values:
                last = values[x]
                column.append(last)
            else:
                column.append(last if carry else None)
        series.append({"label": label, "values": column})
    return {"x": xs, "series": series}


def chart_data(detail: dict[str, Any]) -> dict[str, Any]:
    """Everything the page's charts draw, aligned for uPlot: the traffic chart, then one per gate, all over
    the same time span (the deployment's, from its creation to its latest event) so they line up."""
    flow = traffic(detail)
    moments = [m for m in (_seconds(e["created_at"]) for e in detail["events"]) if m is not None]
    start = _seconds(detail.get("created_at"))
    first = min([start, *moments]) if start else min(moments, default=0.0)
    last = max(moments, default=start or 0.0)
    # A little room after the last event, so a change there (the rollback's drop to 0) is not on the edge.
    span = [first, last + max(1.0, (last - first) * 0.05)]
    weights: Rows = {name: {} for name in flow["clusters"]}
    for point in flow["points"]:
        weights.setdefault(point["cluster"], {})[point["t"]] = point["weight"]
    charts = [
        {
            "id": "traffic",
            "title": "Canary traffic by cluster (%)",
            "kind": "traffic",
            "span": span,
            # The weights hold until the span's end: the last x carries every cluster's last weight.
            **_aligned([*(p["t"] for p in flow["points"]), span[1]], weights, carry=True),
        }
    ]
    for gate in gates(detail):
        rows: Rows = {}
        for point in gate["points"]:
            if point["t"] is None:
                continue
            rows.setdefault(f"{point['cluster']} canary", {})[point["t"]] = point["canary"]
            if point["stable"] is not None:
                rows.setdefault(f"{point['cluster']} stable", {})[point["t"]] = point["stable"]
        charts.append(
            {
                "id": f"gate-{gate['step']}-{gate['metric']}",
                "title": f"{gate['metric']} at step {gate['step']}: canary against stable",
                "kind": "gate",
                "threshold": gate["threshold"],
                "span": span,
                **_aligned([p["t"] for p in gate["points"] if p["t"] is not None], rows, carry=False),
            }
        )
    return {"charts": charts}
