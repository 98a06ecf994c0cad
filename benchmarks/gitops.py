"""GitOps benchmark: committing the reference estate's desired state, and a one-service change in it.

    python benchmarks/gitops.py           # 100 services x 3 environments x 3 clusters
    python benchmarks/gitops.py --json

The estate is `benchmarks/estate.py`'s (900 rendered sets). Measured, in this process:

- render: every set rendered and validated (for scale; `benchmarks/render.py` is the render benchmark);
- estate commit: the whole estate committed, one commit per environment (300 files each), into an empty
  repository, as a first deployment of everything would;
- one-service change: one service's replicas changed in one environment, that service re-rendered and its
  three cluster files committed (median of several changes), into the repository holding the estate — locally
  (the embedded default: compare-and-swap of the branch) and through a bare remote (fetch, commit, push);
- the git objects each writes (`git count-objects`).

The reference, run on the same machine in the same run, is what a person or a CI job does by hand: the same
files written into a working tree, `git add`, `git commit` (and `git push` for the remote case). Goal
(issue: GitOps): a one-service change commits in under 150 ms.
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

GOAL_MS = 150.0
CHANGES = 9  # one-service changes measured; the median counts


def git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


def objects_in(git_dir: Path) -> int:
    counts = dict(
        line.split(": ") for line in git("--git-dir", str(git_dir), "count-objects", "-v").splitlines()
    )
    return int(counts["count"]) + int(counts["in-pack"])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--services", type=int, default=100)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from benchmarks.estate import build_estate
    from orchestrator.config import Project
    from orchestrator.gitops.manifests import dump, manifest_path, service_glob
    from orchestrator.gitops.repository import Author, GitOpsRepository
    from orchestrator.logs import configure_logging
    from orchestrator.render.engine import Renderer

    configure_logging("warning")
    author = Author("bench", "bench@example.com")
    with tempfile.TemporaryDirectory(prefix="gitops-bench-") as folder:
        work = Path(folder)
        estate = build_estate(work / "estate", args.services)
        project = Project(estate.root)
        renderer = Renderer(project)
        environments = {name: project.environment(name) for name in estate.environments}

        started = time.perf_counter()
        files: dict[str, dict[str, bytes]] = {name: {} for name in environments}
        for service in estate.services:
            pipeline = project.pipeline(service)
            for name, environment in environments.items():
                for rendered in renderer.render_environment(pipeline, environment):
                    files[name][manifest_path(name, rendered.cluster, service)] = dump(rendered.objects)
        render_s = time.perf_counter() - started

        local = GitOpsRepository(work / "local.git")
        started = time.perf_counter()
        for name in environments:
            local.commit(files[name], f"estate: {name}", author=author)
        estate_commit_s = time.perf_counter() - started
        estate_objects = objects_in(local.mirror)

        remote = work / "remote.git"
        git("init", "--quiet", "--bare", "--initial-branch=main", str(remote))
        git("--git-dir", str(local.mirror), "push", "--quiet", str(remote), "main:main")
        pushing = GitOpsRepository(work / "mirror.git", remote=str(remote))
        pushing.commit({}, "warm", author=author)  # the mirror made and fetched once, as a long-lived one is

        tree = work / "tree"  # the reference: a working tree, git add, git commit (and push)
        git("clone", "--quiet", str(remote), str(tree))
        git("config", "user.email", "bench@example.com", cwd=tree)
        git("config", "user.name", "bench", cwd=tree)

        service, environment_name = estate.services[len(estate.services) // 2], "prod"
        environment = environments[environment_name]
        pipeline = project.pipeline(service)
        measured: dict[str, list[float]] = {"local": [], "remote": [], "reference": [], "reference_push": []}
        written: dict[str, list[int]] = {"local": [], "remote": []}
        for change in range(CHANGES):
            rendered = renderer.render_environment(pipeline, environment, overrides={"replicas": 10 + change})
            changed = {manifest_path(environment_name, s.cluster, service): dump(s.objects) for s in rendered}
            owns = service_glob(environment_name, service)
            for label, repository in (("local", local), ("remote", pushing)):
                before = objects_in(repository.mirror)
                started = time.perf_counter()
                result = repository.commit(changed, f"{service}: change {change}", author=author, owns=owns)
                measured[label].append(time.perf_counter() - started)
                assert result.created
                written[label].append(objects_in(repository.mirror) - before)
            started = time.perf_counter()
            for path, content in changed.items():
                (tree / path).write_bytes(content)
            git("add", "--", *changed, cwd=tree)
            git("commit", "--quiet", "-m", f"{service}: change {change}", cwd=tree)
            measured["reference"].append(time.perf_counter() - started)
            git("pull", "--quiet", "--rebase", cwd=tree)
            started = time.perf_counter()
            git("push", "--quiet", cwd=tree)
            measured["reference_push"].append(time.perf_counter() - started)

    median = {k: statistics.median(v) * 1000 for k, v in measured.items()}
    result: dict[str, Any] = {
        "services": args.services,
        "sets": estate.set_count,
        "render_s": round(render_s, 2),
        "estate_commit_s": round(estate_commit_s, 3),
        "estate_files": sum(len(f) for f in files.values()),
        "estate_objects": estate_objects,
        "one_service_local_ms": round(median["local"], 1),
        "one_service_remote_ms": round(median["remote"], 1),
        "objects_per_change": statistics.median(written["local"]),
        "reference_add_commit_ms": round(median["reference"], 1),
        "reference_add_commit_push_ms": round(median["reference"] + median["reference_push"], 1),
        "goal_ms": GOAL_MS,
        "goal_met": median["local"] < GOAL_MS and median["remote"] < GOAL_MS,
        "cpus": os.cpu_count(),
        "load_average": round(os.getloadavg()[0], 2),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"estate: {result['sets']} sets rendered in {result['render_s']} s")
    print(
        f"estate commit: {result['estate_files']} files in {result['estate_commit_s']} s "
        f"(3 commits, {result['estate_objects']} git objects)"
    )
    print(
        f"one-service change (3 files): {result['one_service_local_ms']} ms local, "
        f"{result['one_service_remote_ms']} ms through a bare remote; "
        f"{result['objects_per_change']} objects written"
    )
    print(
        f"reference (working tree, git add + commit): {result['reference_add_commit_ms']} ms; "
        f"+ push: {result['reference_add_commit_push_ms']} ms"
    )
    verdict = "met" if result["goal_met"] else "NOT met"
    print(f"goal < {GOAL_MS:.0f} ms: {verdict} (load average {result['load_average']})")


if __name__ == "__main__":
    main()
