"""Fleet benchmark: many concurrent rollouts through the webhook, the Postgres queue and two workers.

    python benchmarks/fleet.py                          # 100 services, pauses of 10 s
    python benchmarks/fleet.py --services 20 --pause 5 --json

Set up in a temporary folder: `orchestrator sim up` (3 emulated clusters), a fresh Postgres database
($ORCHESTRATOR_TEST_PG, default postgresql://postgres@127.0.0.1:5432/postgres), an estate of N services
derived from `pipelines/api.yaml` (`benchmarks/estate.py`) promoting to `local` with one wave of the three
clusters and a canary of `setWeight 20, pause P, setWeight 50, pause P`, committed in git; the server in this
process and two `orchestrator worker` processes, each with `--concurrency N/2`.

1. A push touching `templates/` deploys every service's first release (applied directly: nothing to
   compare it with); not measured.
2. A push changing `environments/local.yaml`'s values makes a new version of every service: N canaries at
   once. Measured: the wall time from the push to the last Succeeded against the configured pauses (2 P: the
   rollouts run side by side, so that is the least the fleet can take; goal within 5 %), the workers' CPU
   (user + system, from /proc) per completed step, the emulator's CPU meanwhile (it shares the cores), and
   the queue's pickup latency (how long each job waited
   for a worker once due, logged by the worker as `rollout_job_picked`).
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

if __package__ in (None, ""):  # run as a script: make `benchmarks` and `orchestrator` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

REPO = Path(__file__).resolve().parent.parent
GOAL_OVER_PAUSES = 0.05
SECRET = b"fleet-secret"
REPOSITORY = "bench/fleet"


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=bench", "-c", "user.email=bench@example.com", *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def write_estate(root: Path, services: int, pause: float) -> list[str]:
    import shutil

    import yaml

    from benchmarks.estate import derived_pipeline, service_name

    shutil.copytree(REPO / "templates", root / "templates")
    (root / "pipelines").mkdir(parents=True)
    (root / "environments").mkdir()
    names = [service_name(i) for i in range(services)]
    for index, name in enumerate(names):
        pipeline = derived_pipeline(index)
        pipeline["promotion"] = ["local"]
        pipeline["strategy"] = {
            "canary": {
                "steps": [
                    {"setWeight": 20},
                    {"pause": {"duration": f"{pause:g}s"}},
                    {"setWeight": 50},
                    {"pause": {"duration": f"{pause:g}s"}},
                ]
            }
        }
        (root / "pipelines" / f"{name}.yaml").write_text(yaml.safe_dump(pipeline, sort_keys=False))
    local = yaml.safe_load((REPO / "environments" / "local.yaml").read_text())
    local["waves"] = [["aws", "azure", "gcp"]]
    local["images"] = {
        name: {"repository": f"registry.addtocloud.local/addtocloud/{name}", "tag": "demo"} for name in names
    }
    (root / "environments" / "local.yaml").write_text(yaml.safe_dump(local, sort_keys=False))
    git(root, "init", "--quiet", "--initial-branch=main")
    git(root, "add", "-A")
    git(root, "commit", "--quiet", "-m", "fleet")
    return names


def _moment(timestamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def change_environment(path: Path) -> None:
    """A value every service's templates read: a new version of every service."""
    import yaml

    local = yaml.safe_load(path.read_text())
    local.setdefault("values", {}).setdefault("env", {})["LOG_LEVEL"] = "debug"
    path.write_text(yaml.safe_dump(local, sort_keys=False))


def push(base: str, root: Path, paths: list[str]) -> None:
    from tests.webhook_helpers import deliver, push_payload

    git(root, "add", "-A")
    git(root, "commit", "--quiet", "--allow-empty", "-m", "change")
    payload = push_payload(git(root, "rev-parse", "HEAD"), paths=paths, repository=REPOSITORY)
    response = deliver(base, payload, secret=SECRET)
    if response.status_code != 202:
        raise SystemExit(f"the push was not accepted: {response.status_code} {response.text}")


# The spans of one rollout of the measured phase, from the push to its last event (`overhead_spans`).
SPANS = {
    "push_to_created": "push -> deployment recorded (queue, pickup, render, freeze)",
    "created_to_committed": "recorded -> desired state committed (GitOps, read back)",
    "steps_beyond_pauses": "committed -> the step before the last done, less the pauses",
    "final_step": "the last step (the promotion to every cluster)",
}


def overhead_spans(trails: Any, pushed_at: float, pauses: float) -> dict[str, dict[str, float]]:
    """Median and max of each span of `SPANS` over the rollouts whose trails (deployment id, event type,
    moment; in order) are given: which part of the path makes the wall time exceed the pauses."""
    from datetime import UTC

    by_deployment: dict[Any, list[tuple[str, float]]] = {}
    for deployment, kind, at in trails:
        moment = (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()
        by_deployment.setdefault(deployment, []).append((kind, moment))
    spans: dict[str, list[float]] = {name: [] for name in SPANS}
    for events in by_deployment.values():
        created = next(t for kind, t in events if kind == "created")
        committed = next((t for kind, t in events if kind == "committed"), created)
        steps = [t for kind, t in events if kind == "step_completed"]
        if len(steps) < 2:
            continue
        spans["push_to_created"].append(created - pushed_at)
        spans["created_to_committed"].append(committed - created)
        spans["steps_beyond_pauses"].append(steps[-2] - committed - pauses)
        spans["final_step"].append(steps[-1] - steps[-2])
    return {
        name: {"median": round(statistics.median(values), 2), "max": round(max(values), 2)}
        if values
        else {"median": 0.0, "max": 0.0}
        for name, values in spans.items()
    }


def wait_settled(sessions: Any, count: int, timeout: float) -> None:
    from sqlalchemy import func, select

    from orchestrator.store.models import RolloutRequest

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sessions() as session:
            open_ = session.scalar(
                select(func.count())
                .select_from(RolloutRequest)
                .where(RolloutRequest.status.in_(("queued", "deploying")))
            )
            total = session.scalar(select(func.count()).select_from(RolloutRequest))
        if total >= count and open_ == 0:
            return
        time.sleep(0.2)
    raise SystemExit(f"the rollouts did not settle in {timeout:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--services", type=int, default=100)
    parser.add_argument("--pause", type=float, default=10.0, help="seconds of each of the two pauses")
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from sqlalchemy import func, select

    from benchmarks.server_setup import cpu_seconds, fresh_database
    from orchestrator.logs import configure_logging
    from orchestrator.server.app import create_app
    from orchestrator.server.settings import ServerSettings
    from orchestrator.server.webhook_settings import WebhookSettings
    from orchestrator.sim.client import load_running_sim
    from orchestrator.store.models import Deployment, DeploymentEvent, Phase
    from tests.server_fixtures import serving

    configure_logging("warning")
    workers: list[subprocess.Popen[bytes]] = []
    with fresh_database("orchestrator_fleet") as url, tempfile.TemporaryDirectory(prefix="fleet-") as folder:
        work = Path(folder)
        state = work / "state"
        root = work / "estate"
        env = {
            **os.environ,
            "ORCHESTRATOR_STATE_DIR": str(state),
            "ORCHESTRATOR_DATABASE_URL": url,
            "ORCHESTRATOR_ROOT": str(root),
            "ORCHESTRATOR_LOG_FORMAT": "json",
        }
        os.environ["ORCHESTRATOR_STATE_DIR"] = str(state)
        cli = [sys.executable, "-m", "orchestrator"]
        try:
            subprocess.run([*cli, "sim", "up"], check=True, capture_output=True, env=env)
            sim = load_running_sim(state)
            if sim is None:
                raise SystemExit("`orchestrator sim up` left no emulator running")
            names = write_estate(root, args.services, args.pause)
            app = create_app(
                ServerSettings(
                    root=root,
                    state_dir=state,
                    database_url=url,
                    webhooks=WebhookSettings(github_secret=SECRET, github_repository=REPOSITORY),
                )
            )
            sessions = app.state.sessions
            per_worker = max(2, (args.services + 1) // 2)
            logs = [work / f"worker-{i}.log" for i in range(2)]
            for log in logs:
                workers.append(
                    subprocess.Popen(
                        [*cli, "--log-level", "info", "worker", "--concurrency", str(per_worker)],
                        cwd=REPO,
                        env=env,
                        stdout=subprocess.DEVNULL,
                        stderr=log.open("wb"),
                    )
                )
            with serving(app) as base:
                push(base, root, ["templates/k8s/deployment.yaml.j2"])
                wait_settled(sessions, len(names), args.timeout)
                offsets = [log.stat().st_size for log in logs]  # the measured phase's pickups only
                change_environment(root / "environments" / "local.yaml")
                cpu_before = sum(cpu_seconds(w.pid) for w in workers)
                sim_before = cpu_seconds(sim.pid)
                started, pushed_at = time.monotonic(), time.time()
                push(base, root, ["environments/local.yaml"])
                wait_settled(sessions, 2 * len(names), args.timeout)
                wall = time.monotonic() - started
                cpu = sum(cpu_seconds(w.pid) for w in workers) - cpu_before
                sim_cpu = cpu_seconds(sim.pid) - sim_before
            with sessions() as session:
                second = (
                    select(Deployment.id)
                    .order_by(Deployment.created_at.desc())
                    .limit(len(names))
                    .scalar_subquery()
                )
                phases = dict(
                    session.execute(
                        select(Deployment.phase, func.count())
                        .where(Deployment.id.in_(second))
                        .group_by(Deployment.phase)
                    ).all()
                )
                trails = session.execute(
                    select(DeploymentEvent.deployment_id, DeploymentEvent.type, DeploymentEvent.created_at)
                    .where(DeploymentEvent.deployment_id.in_(second))
                    .order_by(DeploymentEvent.deployment_id, DeploymentEvent.seq)
                ).all()
                steps = session.scalar(
                    select(func.count())
                    .select_from(DeploymentEvent)
                    .where(
                        DeploymentEvent.deployment_id.in_(second), DeploymentEvent.type == "step_completed"
                    )
                )
        finally:
            for worker in workers:
                worker.terminate()
            for worker in workers:
                try:
                    worker.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    worker.kill()
            subprocess.run([*cli, "sim", "down"], capture_output=True, env=env)
        entries = [
            json.loads(line)
            for log, offset in zip(logs, offsets, strict=True)
            for line in log.read_bytes()[offset:].decode(errors="replace").splitlines()
            if line.startswith("{")
        ]
        picked = [e for e in entries if e.get("event") == "rollout_job_picked" and e.get("attempt") == 1]
        pickups = [e["pickup_seconds"] for e in picked]
        # From a job's pickup to its deployment recorded: the project read, rendered, validated and frozen.
        first_pick = {int(e["key"]): _moment(e["timestamp"]) for e in picked}
        creating = sorted(
            _moment(e["timestamp"]) - first_pick[e["request"]]
            for e in entries
            if e.get("event") == "rollout_request_deploying" and e.get("request") in first_pick
        )
    pauses = 2 * args.pause
    over = wall / pauses - 1
    spans = overhead_spans(trails, pushed_at, pauses)
    pickups.sort()
    result = {
        "services": len(names),
        "succeeded": phases.get(Phase.SUCCEEDED.value, 0),
        "phases": phases,
        "wall_seconds": round(wall, 2),
        "configured_pauses_seconds": pauses,
        "over_pauses": round(over, 4),
        "steps_completed": steps,
        "worker_cpu_seconds": round(cpu, 2),
        "emulator_cpu_seconds": round(sim_cpu, 2),  # the 3 clusters' controllers and mesh: not ours
        "cpu_ms_per_step": round(cpu / steps * 1000, 2) if steps else None,
        "pickup_ms": {
            "count": len(pickups),
            "median": round(statistics.median(pickups) * 1000, 1) if pickups else None,
            "p99": round(pickups[min(len(pickups) - 1, int(0.99 * len(pickups)))] * 1000, 1)
            if pickups
            else None,
        },
        "create_seconds": {
            "median": round(statistics.median(creating), 2) if creating else None,
            "max": round(creating[-1], 2) if creating else None,
        },
        "over_pauses_spans_seconds": spans,
        "goal_over_pauses": GOAL_OVER_PAUSES,
        "met": over <= GOAL_OVER_PAUSES and phases.get(Phase.SUCCEEDED.value, 0) == len(names),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{len(names)} concurrent canaries over 3 emulated clusters, 2 workers: {phases}")
    print(
        f"wall {wall:.1f} s for {pauses:g} s of pauses: {over:+.1%} (goal <= {GOAL_OVER_PAUSES:.0%}: "
        f"{'met' if result['met'] else 'not met'})"
    )
    print(f"worker CPU {cpu:.1f} s for {steps} steps: {result['cpu_ms_per_step']} ms per step")
    print(f"emulator CPU meanwhile {sim_cpu:.1f} s (on the same 2 cores)")
    create = result["create_seconds"]
    print(f"from pickup to deployment recorded: median {create['median']} s, max {create['max']} s")
    pickup = result["pickup_ms"]
    print(f"queue pickup: median {pickup['median']} ms, p99 {pickup['p99']} ms ({pickup['count']} jobs)")
    print("where a rollout's time beyond its pauses goes, from its audit trail (median / max):")
    for name, label in SPANS.items():
        print(f"    {label:<58}{spans[name]['median']:>7.1f} s /{spans[name]['max']:>6.1f} s")


if __name__ == "__main__":
    main()
