"""Build benchmark (issue 5): a rebuild of an unchanged commit against a first build.

    python benchmarks/build.py          # figures as text
    python benchmarks/build.py --json   # machine-readable

Everything is real and local: the Docker daemon, a docker-registry process on 127.0.0.1 with htpasswd
auth, a base image imported from busybox-static, and a git checkout of the reference services. Measured:

- first build: `build_and_push(api, push=True)` for a commit never built (build, push, verify, record);
- rebuild: the same call again for the same commit (target: under 2 s; nothing built, no layer pushed);
- next commit: a commit that does not touch the service (built from cache; no layer pushed twice);
- the rebuild as `orchestrator build --push` in a fresh process, and the interpreter + import cost alone.

The registry's blob store is counted before and after each step: "no layer pushed twice" is read from the
registry itself, not from what the client says it did.
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
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `orchestrator` and `tests` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import docker

from orchestrator.build import BuildResult, build_and_push
from orchestrator.config import Project
from orchestrator.store import db
from scripts.base_image import make_base_image
from tests.services.cli import run_orchestrator
from tests.services.docker import descendants_of, images_named, remove_images
from tests.services.project import make_build_project
from tests.services.registry import LocalRegistry

TARGET_REBUILD_SECONDS = 2.0


@dataclass
class Step:
    name: str
    seconds: float
    built: bool
    layers_pushed: int
    new_blobs: int  # blobs the registry stores afterwards that it did not before (manifests count too)


def _timed(registry: LocalRegistry, name: str, call: Callable[[], BuildResult]) -> tuple[Step, BuildResult]:
    blobs_before = registry.blob_count()
    start = time.perf_counter()
    result: BuildResult = call()
    seconds = time.perf_counter() - start
    step = Step(name, seconds, not result.skipped, result.layers_pushed, registry.blob_count() - blobs_before)
    return step, result


@dataclass
class Figures:
    steps: list[Step]
    rebuild_speedup: float
    rebuild_target_seconds: float
    rebuild_within_target: bool
    no_layer_pushed_twice: bool
    cli_rebuild_seconds: float
    python_import_seconds: float
    rebuild_runs: int
    cpus: int


def run(rebuilds: int) -> Figures:
    client = docker.from_env()
    client.ping()
    base_name = f"orchestrator-bench/busybox:{uuid.uuid4().hex[:12]}"
    base_id = make_base_image(client, base_name)
    registry = LocalRegistry().start()
    folder = Path(tempfile.mkdtemp(prefix="bench-build-"))
    project_files = make_build_project(folder / "checkout", base_image=base_name)
    db.upgrade(project_files.database_url)
    os.environ["ORCHESTRATOR_REGISTRY_USERNAME"] = registry.username
    os.environ["ORCHESTRATOR_REGISTRY_PASSWORD"] = registry.password
    project = Project(project_files.root)

    def build() -> BuildResult:
        return build_and_push(
            project,
            "api",
            commit=None,
            push=True,
            registry_override=registry.host,
            database_url=project_files.database_url,
            on_output=lambda _line: None,
        )

    try:
        first, _ = _timed(registry, "first build", build)
        again = [_timed(registry, "rebuild, same commit", build)[0] for _ in range(rebuilds)]
        rebuild = Step(
            "rebuild, same commit (median)",
            statistics.median(s.seconds for s in again),
            any(s.built for s in again),
            sum(s.layers_pushed for s in again),
            sum(s.new_blobs for s in again),
        )
        project_files.root.joinpath("NOTES.md").write_text("a change outside the service\n")
        project_files.commit_all("unrelated change")
        next_commit, _ = _timed(registry, "next commit, service unchanged", build)

        env = {"ORCHESTRATOR_DATABASE_URL": project_files.database_url}
        start = time.perf_counter()
        cli = run_orchestrator(
            "build", "api", "--push", "-q", "--registry", registry.host, cwd=project_files.root, env=env
        )
        cli_seconds = time.perf_counter() - start
        if cli.returncode != 0 or "nothing rebuilt" not in cli.stdout:
            raise RuntimeError(f"the CLI rebuild did not skip:\n{cli.stdout}\n{cli.stderr}")
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import orchestrator.cli.main"], check=True)
        import_seconds = time.perf_counter() - start
    finally:
        remove_images(client, images_named(client, [f"{registry.host}/", f"{project_files.namespace}/"]))
        remove_images(client, [*descendants_of(client, base_id), base_id])
        registry.stop()
        client.close()
        subprocess.run(["rm", "-rf", str(folder)], check=False)

    return Figures(
        steps=[first, rebuild, next_commit],
        rebuild_speedup=first.seconds / rebuild.seconds if rebuild.seconds else 0.0,
        rebuild_target_seconds=TARGET_REBUILD_SECONDS,
        rebuild_within_target=rebuild.seconds < TARGET_REBUILD_SECONDS and not rebuild.built,
        no_layer_pushed_twice=rebuild.new_blobs == 0 and next_commit.layers_pushed == 0,
        cli_rebuild_seconds=cli_seconds,
        python_import_seconds=import_seconds,
        rebuild_runs=rebuilds,
        cpus=os.cpu_count() or 0,
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--runs", type=int, default=5, help="rebuilds of the unchanged commit (median)")
    args = parser.parse_args()
    figures = run(args.runs)
    passed = figures.rebuild_within_target and figures.no_layer_pushed_twice
    if args.json:
        print(json.dumps(asdict(figures), indent=2))
        return 0 if passed else 1
    print(f"{'step':34} {'seconds':>8} {'built':>6} {'layers pushed':>14} {'new blobs*':>10}")
    for step in figures.steps:
        built = "yes" if step.built else "no"
        print(f"{step.name:34} {step.seconds:8.2f} {built:>6} {step.layers_pushed:14d} {step.new_blobs:10d}")
    print("* blobs the registry stores that it did not before: layers, image configs and manifests")
    print()
    rebuild = figures.steps[1].seconds
    print(
        f"rebuild of an unchanged commit: {rebuild:.2f} s (target < {TARGET_REBUILD_SECONDS:.0f} s), "
        f"{figures.rebuild_speedup:.1f}x faster than the first build"
    )
    print(f"no layer pushed twice: {'yes' if figures.no_layer_pushed_twice else 'NO'}")
    print(
        "the same rebuild as `orchestrator build --push` in a new process: "
        f"{figures.cli_rebuild_seconds:.2f} s (of which Python start-up and imports: "
        f"{figures.python_import_seconds:.2f} s)"
    )
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
