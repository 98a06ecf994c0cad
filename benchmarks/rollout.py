"""Rollout benchmark (SPEC §9): what one canary step costs the orchestrator, and how close to the configured
pauses a rollout's wall time stays.

    python benchmarks/rollout.py          # pauses of 5 s (about a minute and a half)
    python benchmarks/rollout.py --pause 2 --json

The emulated clusters run in their own process (`orchestrator sim up` in a temporary state folder), so the
CPU time measured here — `time.process_time()` of this process, every thread included — is the
orchestrator's alone: rendering is done before the steps, and each setWeight step is one write (a PUT of
the VirtualService) per cluster, made in parallel, plus the step's completion in the store (one SQLite
transaction). Writes per step and cluster are counted twice: by the engine, and by the emulator's own
request log. The steps are seconds apart, so each starts with cold caches, as in a real rollout; the same
work back to back costs about a third less.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `orchestrator` and `tests` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CPU_TARGET_MS = 5.0
OVERHEAD_TARGET = 0.02
WEIGHTS = tuple(range(10, 100, 10))  # and the implied 100: ten setWeight steps, for a steady median


def strategy(pause: float) -> str:
    steps = "".join(f"      - setWeight: {w}\n      - pause: {{duration: {pause}s}}\n" for w in WEIGHTS)
    return f"strategy:\n  canary:\n    steps:\n{steps}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pause", type=float, default=5.0, help="seconds of each of the four pauses")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from orchestrator.logs import configure_logging

    configure_logging("warning")

    from orchestrator.config import ClusterConfig, Project
    from orchestrator.kube.client import KubeClient
    from orchestrator.rollout.desired import GitDesiredState
    from orchestrator.rollout.engine import DeployRequest, RolloutEngine
    from orchestrator.rollout.gates import AnalysisGateRunner
    from orchestrator.rollout.plan import SetWeight, build_plan
    from orchestrator.runtime import connect_cluster, open_store
    from orchestrator.sim.client import SimControl, load_running_sim
    from tests.integration.rollout_fixtures import estate_with_strategy

    with tempfile.TemporaryDirectory(prefix="rollout-bench-") as folder:
        work = Path(folder)
        os.environ["ORCHESTRATOR_STATE_DIR"] = str(work / "state")
        root = estate_with_strategy(work / "estate", strategy(args.pause))
        local = root / "environments/local.yaml"  # one wave: every cluster takes every step together
        local.write_text(
            local.read_text().replace("  - [aws]\n  - [azure, gcp]\n", "  - [aws, azure, gcp]\n")
        )
        cli = [sys.executable, "-m", "orchestrator"]
        subprocess.run([*cli, "sim", "up"], check=True, capture_output=True)
        try:
            info = load_running_sim()
            assert info is not None
            project = Project(root)
            sessions = open_store(f"sqlite:///{work / 'state.db'}")
            steps: dict[int, dict[str, Any]] = {}

            def report(event: dict[str, Any]) -> None:
                if event["type"] == "step":
                    steps[event["step"]] = {
                        "label": event["label"],
                        "cpu": time.process_time(),
                        "started": time.monotonic(),
                    }
                elif event["type"] == "step_completed" and event["step"] in steps:
                    entry = steps[event["step"]]
                    entry["cpu"] = time.process_time() - entry["cpu"]
                    entry["writes"] = event["writes"]
                    entry["finished"] = time.monotonic()

            def connect(cluster: ClusterConfig) -> KubeClient:
                return connect_cluster(cluster)

            engine = RolloutEngine(
                project,
                sessions,
                desired=GitDesiredState(work / "state", project.root),
                connect=connect,
                report=report,
                gates=lambda p, e: AnalysisGateRunner(p, e),
                poll_interval=0.05,
            )
            first = engine.create(DeployRequest(service="api", environment="local", git_commit="1" * 40))
            assert engine.run(first).value == "Succeeded"
            steps.clear()
            with SimControl.for_sim(info) as control:
                for cluster in info.clusters:
                    control.reset_requests(cluster)
                deployment = engine.create(
                    DeployRequest(
                        service="api", environment="local", git_commit="2" * 40, overrides={"replicas": 3}
                    )
                )
                plan_steps = build_plan(project.pipeline("api").strategy, project.environment("local"))
                started = time.monotonic()
                if os.environ.get("ROLLOUT_BENCH_PROFILE"):  # where the CPU goes, for development
                    import cProfile

                    profiler = cProfile.Profile()
                    phase = profiler.runcall(engine.run, deployment)
                    profiler.dump_stats(os.environ["ROLLOUT_BENCH_PROFILE"])
                else:
                    phase = engine.run(deployment)
                assert phase.value == "Succeeded", phase
                sim_writes = {c: len(control.requests(c, verb="write")) for c in info.clusters}
        finally:
            subprocess.run([*cli, "sim", "down"], capture_output=True)

    weight_steps = [i for i, s in enumerate(plan_steps) if isinstance(s.action, SetWeight)]
    cpu_ms = [steps[i]["cpu"] * 1000 for i in weight_steps]
    writes = [count for i in weight_steps for count in steps[i]["writes"].values()]
    # Wall time of the stepping phase: from the first setWeight's start to the last pause's end.
    first_weight = weight_steps[0]
    last_pause = max(i for i, s in enumerate(plan_steps) if s.action.__class__.__name__ == "Pause")
    stepping = steps[last_pause]["finished"] - steps[first_weight]["started"]
    configured = args.pause * len(WEIGHTS)
    overhead = (stepping - configured) / configured
    result = {
        "clusters": 3,
        "setweight_steps": len(weight_steps),
        "cpu_ms_per_step": {
            "median": statistics.median(cpu_ms),
            "p90": statistics.quantiles(cpu_ms, n=10)[-1],
            "max": max(cpu_ms),
            "target": CPU_TARGET_MS,
        },
        "writes_per_step_per_cluster": {"values": sorted(set(writes)), "target": 1},
        "emulator_write_requests_during_rollout": sim_writes,
        "stepping_wall_seconds": round(stepping, 3),
        "configured_pause_seconds": configured,
        "overhead": round(overhead, 4),
        "overhead_target": OVERHEAD_TARGET,
        "whole_rollout_seconds": round(time.monotonic() - started, 3),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"canary over 3 clusters, {len(weight_steps)} setWeight steps, pauses of {args.pause:g}s")
    print(
        f"orchestrator CPU per step: median {result['cpu_ms_per_step']['median']:.2f} ms, "
        f"p90 {result['cpu_ms_per_step']['p90']:.2f} ms, "
        f"max {result['cpu_ms_per_step']['max']:.2f} ms (target < {CPU_TARGET_MS:g} ms); "
        f"per cluster {result['cpu_ms_per_step']['median'] / 3:.2f} ms"
    )
    print(f"writes per step per cluster: {sorted(set(writes))} (target exactly 1)")
    print(f"write requests the emulators saw during the rollout: {sim_writes}")
    print(
        f"stepping wall time {stepping:.3f}s for {configured:g}s of configured pauses: "
        f"{overhead * 100:+.2f}% (target < {OVERHEAD_TARGET * 100:g}%)"
    )


if __name__ == "__main__":
    main()
