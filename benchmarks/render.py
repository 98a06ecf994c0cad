"""Render benchmark (SPEC §9): the orchestrator's renderer against `kubectl kustomize` on the same estate.

    python benchmarks/render.py             # the full run: 900 kustomize processes, several minutes
    python benchmarks/render.py --quick 90  # 90 overlays and one cluster's tree, EXTRAPOLATED (development)
    python benchmarks/render.py --json      # the results as JSON

The estate is the repository's reference estate scaled to 100 services x 3 environments x 3 clusters
(see `benchmarks/estate.py`). The orchestrator side is one fresh `python` process that imports the
package, loads every pipeline and environment, renders every (service, environment, cluster) set with
`Renderer` (validation on) and computes each set's content hash; its wall time, from process start to
exit, is the figure compared (it ends as the `orchestrator` program does, without the interpreter's
teardown). It runs several times, spread over the benchmark (before, between and
after the kustomize runs, so that a change in the machine's load reaches both sides), and the median
counts.

The kustomize side is the equivalent estate: per service a `base/` holding one rendered set's objects,
per (environment, cluster) an overlay that patches it into that cluster's set. `kubectl kustomize`
builds it once per overlay (900 processes), and as trees. Every kustomize output is checked to hold
exactly the objects the renderer made before any time is reported. Both sides run serially, one
process at a time.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

if __package__ in (None, ""):  # run as a script: make `benchmarks` and `orchestrator` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

if TYPE_CHECKING:
    from benchmarks.estate import Overlay

# Nothing beyond the standard library is imported at the top: the timed child process (the
# `--measure-render` mode) must import only what the orchestrator itself imports, inside its timer.

TARGET_RATIO = 25.0
# SPEC §9's reference figures for kustomize on this estate (another machine): for comparison only.
SPEC_PROCESSES_S = 51.0
SPEC_TREE_S = (80.0, 100.0)


# --- the orchestrator side, in a fresh process ---------------------------------------------------------


def measure_render(root: Path, *, yaml_text: bool = False) -> dict[str, Any]:
    """Render and validate the whole estate under `root` in this process, timing each phase."""
    started, started_cpu = time.perf_counter(), time.process_time()
    from orchestrator.config import Project
    from orchestrator.logs import configure_logging
    from orchestrator.render.engine import Renderer
    from orchestrator.render.manifests import environment_hash

    configure_logging("warning")
    imported, imported_cpu = time.perf_counter(), time.process_time()
    project = Project(root)
    environments = [project.environment(name) for name in project.environment_names]
    pipelines = [project.pipeline(name) for name in project.service_names]
    loaded, loaded_cpu = time.perf_counter(), time.process_time()
    renderer = Renderer(project, validate=True)
    hashes: dict[str, str] = {}
    sets = objects = text_bytes = 0
    for pipeline in pipelines:
        for environment in environments:
            rendered = renderer.render_environment(pipeline, environment)
            hashes[f"{pipeline.service}/{environment.name}"] = environment_hash(rendered)
            sets += len(rendered)
            objects += sum(len(r.objects) for r in rendered)
            if yaml_text:
                text_bytes += sum(len(r.to_yaml()) for r in rendered)
    finished, finished_cpu = time.perf_counter(), time.process_time()
    return {
        "import_s": imported - started,
        "config_s": loaded - imported,
        "render_s": finished - loaded,
        "import_cpu_s": imported_cpu - started_cpu,
        "config_cpu_s": loaded_cpu - imported_cpu,
        "render_cpu_s": finished_cpu - loaded_cpu,
        "sets": sets,
        "objects": objects,
        "yaml_bytes": text_bytes,
        "hashes": hashes,
    }


@dataclass
class RenderRun:
    wall_s: float  # the whole process: interpreter, imports, config, render, validation, hashes
    cpu_s: float
    phases: dict[str, Any]


def run_render_process(root: Path, *, yaml_text: bool = False) -> RenderRun:
    command = [sys.executable, str(Path(__file__).resolve()), "--measure-render", str(root)]
    if yaml_text:
        command.append("--yaml-text")
    (wall, cpu), result = _timed(lambda: subprocess.run(command, capture_output=True, text=True))
    if result.returncode != 0:
        raise SystemExit(f"the render process failed (exit {result.returncode}):\n{result.stderr.strip()}")
    return RenderRun(wall, cpu, json.loads(result.stdout))


def _timed(action: Callable[[], Any]) -> tuple[tuple[float, float], Any]:
    """Wall time and the CPU time of the child processes `action` ran (user + system)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    value = action()
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return (wall, cpu), value


# --- the kustomize side ------------------------------------------------------------------------------


@dataclass
class KustomizeRun:
    builds: int  # kustomize processes run
    overlays: int  # overlays those builds covered
    measured_s: float
    cpu_s: float
    total_s: float  # for every overlay of the estate: as measured, or extrapolated from a sample
    extrapolated: bool
    how: str


def kustomize(kubectl: str, folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([kubectl, "kustomize", str(folder)], capture_output=True, text=True)


def run_overlays(kubectl: str, overlays: Sequence[Overlay]) -> tuple[float, float, list[str]]:
    """`kubectl kustomize <overlay>` once per overlay, one after another; wall, CPU and outputs."""

    def build_all() -> list[str]:
        outputs = []
        for overlay in overlays:
            result = kustomize(kubectl, overlay.path)
            if result.returncode != 0:
                raise SystemExit(f"kubectl kustomize {overlay.path} failed:\n{result.stderr.strip()}")
            outputs.append(result.stdout)
        return outputs

    (wall, cpu), outputs = _timed(build_all)
    return wall, cpu, outputs


def sample(items: Sequence[Any], count: int) -> list[Any]:
    """`count` items spread evenly over the sequence, so that every environment and cloud shows up."""
    if count >= len(items):
        return list(items)
    step = len(items) / count
    return [items[int(i * step)] for i in range(count)]


def cluster_trees(root: Path, overlays: Sequence[Overlay]) -> list[tuple[Path, list[Overlay]]]:
    """One kustomization per (environment, cluster) listing that cluster's overlay of every service."""
    from benchmarks.estate import write_tree

    groups: dict[tuple[str, str], list[Overlay]] = {}
    for overlay in overlays:
        groups.setdefault((overlay.environment, overlay.cluster), []).append(overlay)
    return [
        (write_tree(root / "trees" / f"{env}-{cluster}", members), members)
        for (env, cluster), members in groups.items()
    ]


def check_outputs(
    outputs: Sequence[str], expected: Sequence[list[dict[str, Any]]], names: Sequence[str]
) -> None:
    """Each kustomize output holds exactly the expected objects (compared as parsed data)."""
    import yaml

    from benchmarks.estate import object_index

    loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    for text, objects, name in zip(outputs, expected, names, strict=True):
        got = object_index(d for d in yaml.load_all(text, Loader=loader) if d)
        want = object_index(objects)
        if got != want:
            differing = sorted(set(got) ^ set(want)) or [k for k in want if got.get(k) != want[k]]
            raise SystemExit(f"kustomize output for {name} differs from the renderer's: {differing[:3]}")


# --- the run ------------------------------------------------------------------------------------------


@dataclass
class Results:
    date: str
    machine: dict[str, Any]
    estate: dict[str, Any]
    orchestrator: dict[str, Any]
    kustomize_processes: dict[str, Any]
    kustomize_tree: dict[str, Any]
    ratio: dict[str, Any]
    spec_reference_s: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick",
        type=int,
        metavar="N",
        help="build only N overlays as processes and one cluster's tree, and extrapolate (development)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--save", metavar="FILE", help="also write the results as JSON to FILE")
    parser.add_argument("--services", type=int, default=100, help="services in the estate (default 100)")
    parser.add_argument("--repeat", type=int, default=3, help="orchestrator runs; the median counts")
    parser.add_argument("--kubectl", default="kubectl", help="the kubectl to run (default: kubectl on PATH)")
    parser.add_argument("--keep", metavar="DIR", help="build the estates in DIR (empty) and keep them")
    parser.add_argument("--measure-render", metavar="ROOT", help=argparse.SUPPRESS)
    parser.add_argument("--yaml-text", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.measure_render:  # the child process the benchmark times
        print(json.dumps(measure_render(Path(args.measure_render), yaml_text=args.yaml_text)), flush=True)
        # It ends as the `orchestrator` program does (`cli.main.run`): without the interpreter's teardown,
        # which would free the whole estate object by object (about 0.09 s) after the work is done.
        os._exit(0)
    if args.quick is not None and args.quick < 1:
        parser.error("--quick needs at least one overlay")
    if args.repeat < 1:
        parser.error("--repeat needs at least one run")
    kubectl = shutil.which(args.kubectl)
    if kubectl is None:
        raise SystemExit(f"{args.kubectl} not found: the benchmark compares against `kubectl kustomize`")
    if args.keep:
        workdir = Path(args.keep).resolve()
        if workdir.exists() and any(workdir.iterdir()):
            raise SystemExit(f"--keep {workdir}: the folder is not empty")
        results = run(args, kubectl, workdir)
    else:
        with tempfile.TemporaryDirectory(prefix="render-bench-") as tmp:
            results = run(args, kubectl, Path(tmp))
    if args.save:
        Path(args.save).write_text(json.dumps(asdict(results), indent=2) + "\n", encoding="utf-8")
    print(json.dumps(asdict(results), indent=2) if args.json else report(results))
    return 0


def run(args: argparse.Namespace, kubectl: str, workdir: Path) -> Results:
    from benchmarks.estate import build_estate, build_kustomize_estate, write_tree
    from orchestrator.config import Project
    from orchestrator.logs import configure_logging
    from orchestrator.render.engine import Renderer
    from orchestrator.render.manifests import RenderedSet, environment_hash

    configure_logging("warning")
    say = _progress(quiet=args.json)
    load_before = os.getloadavg()
    estate = build_estate(workdir / "estate", services=args.services)
    say(f"estate: {len(estate.services)} services x 3 environments x 3 clusters = {estate.set_count} sets")

    runs: list[RenderRun] = []

    def render_runs(count: int) -> None:
        for _ in range(count):
            runs.append(run_render_process(estate.root))
            say(f"orchestrator render + validate: {runs[-1].wall_s:.2f} s (CPU {runs[-1].cpu_s:.2f} s)")

    spread = [args.repeat // 3 + (1 if i < args.repeat % 3 else 0) for i in range(3)]
    render_runs(spread[0])

    # The same sets in this process: to write the kustomize estate and to check its outputs against.
    project = Project(estate.root)
    renderer = Renderer(project, validate=False)
    sets: list[RenderedSet] = []
    for service in estate.services:
        for env in estate.environments:
            rendered = renderer.render_environment(project.pipeline(service), project.environment(env))
            if runs and environment_hash(rendered) != runs[0].phases["hashes"][f"{service}/{env}"]:
                raise SystemExit(f"{service}/{env}: the timed render and this one made different objects")
            sets.extend(rendered)
    by_key = {(s.service, s.environment, s.cluster): s.objects for s in sets}
    overlays = build_kustomize_estate(workdir / "kustomize", sets)
    say(f"kustomize estate: {len(overlays)} overlays")

    # kustomize as one process per overlay.
    chosen = sample(overlays, args.quick) if args.quick else list(overlays)
    say(f"kubectl kustomize, {len(chosen)} processes ...")
    wall, cpu, outputs = run_overlays(kubectl, chosen)
    check_outputs(
        outputs,
        [by_key[(o.service, o.environment, o.cluster)] for o in chosen],
        [str(o.path) for o in chosen],
    )
    scale = len(overlays) / len(chosen)
    processes = KustomizeRun(
        builds=len(chosen),
        overlays=len(chosen),
        measured_s=wall,
        cpu_s=cpu,
        total_s=wall * scale,
        extrapolated=scale != 1,
        how="one `kubectl kustomize` process per overlay",
    )
    say(f"kubectl kustomize, {len(chosen)} processes: {wall:.1f} s (CPU {cpu:.1f} s)")
    render_runs(spread[1])

    # kustomize as a tree: first the whole estate as one kustomization, then one per cluster.
    notes = []
    (whole_wall, whole_cpu), whole = _timed(
        lambda: kustomize(kubectl, write_tree(workdir / "kustomize", overlays))
    )
    if whole.returncode == 0:
        check_outputs([whole.stdout], [[o for s in sets for o in s.objects]], ["the whole estate's tree"])
        tree = KustomizeRun(
            1, len(overlays), whole_wall, whole_cpu, whole_wall, False, "one tree of every overlay"
        )
    else:
        reason = whole.stderr.strip().splitlines()[-1] if whole.stderr.strip() else "no message"
        notes.append(
            f"kustomize refuses all {len(overlays)} overlays as one tree: the clusters of an environment "
            "share its namespace, so the same object ids recur across them. The tree is built per "
            f"cluster instead, each listing that cluster's overlay of all {len(estate.services)} "
            f"services. kustomize said: {_shorten(reason, 240)}"
        )
        trees = cluster_trees(workdir / "kustomize", overlays)
        chosen_trees = trees[:1] if args.quick else trees
        tree_wall = tree_cpu = 0.0
        for folder, members in chosen_trees:
            (seconds, cpu_seconds), result = _timed(partial(kustomize, kubectl, folder))
            if result.returncode != 0:
                raise SystemExit(f"kubectl kustomize {folder} failed:\n{result.stderr.strip()}")
            expected = [obj for o in members for obj in by_key[(o.service, o.environment, o.cluster)]]
            check_outputs([result.stdout], [expected], [str(folder)])
            tree_wall += seconds
            tree_cpu += cpu_seconds
            say(f"kubectl kustomize tree {folder.name}: {seconds:.1f} s (CPU {cpu_seconds:.1f} s)")
        tree_scale = len(trees) / len(chosen_trees)
        tree = KustomizeRun(
            builds=len(chosen_trees),
            overlays=sum(len(m) for _, m in chosen_trees),
            measured_s=tree_wall,
            cpu_s=tree_cpu,
            total_s=tree_wall * tree_scale,
            extrapolated=tree_scale != 1,
            how=f"one tree per cluster ({len(trees)} processes)",
        )
    render_runs(spread[2])
    with_text = run_render_process(estate.root, yaml_text=True)
    say(f"orchestrator render + validate + YAML text: {with_text.wall_s:.2f} s")

    median = sorted(runs, key=lambda r: r.wall_s)[len(runs) // 2]
    ours, ours_cpu = median.wall_s, sorted(r.cpu_s for r in runs)[len(runs) // 2]
    return Results(
        date=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        machine={
            "nproc": os.cpu_count(),
            "cpu": _cpu_model(),
            "python": platform.python_version(),
            "kubectl": _kubectl_version(kubectl),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        },
        estate={
            "services": len(estate.services),
            "environments": estate.environments,
            "clusters_per_environment": 3,
            "sets": median.phases["sets"],
            "objects": median.phases["objects"],
        },
        orchestrator={
            "wall_s": round(ours, 3),
            "cpu_s": round(ours_cpu, 3),
            "runs_wall_s": [round(r.wall_s, 3) for r in runs],
            "phases_s": {k: round(v, 3) for k, v in median.phases.items() if k.endswith("_s")},
            "with_yaml_text_wall_s": round(with_text.wall_s, 3),
            "yaml_text_bytes": with_text.phases["yaml_bytes"],
            "processes": 1,
        },
        kustomize_processes=_rounded(asdict(processes)),
        kustomize_tree=_rounded(asdict(tree)),
        ratio={
            "processes": round(processes.total_s / ours, 1),
            "processes_cpu": round(processes.cpu_s * scale / ours_cpu, 1),
            "tree": round(tree.total_s / ours, 1),
            "tree_cpu": round(tree.cpu_s * tree.total_s / tree.measured_s / ours_cpu, 1),
            "processes_with_yaml_text": round(processes.total_s / with_text.wall_s, 1),
            "target": TARGET_RATIO,
            "met_against_processes": processes.total_s / ours >= TARGET_RATIO,
            "met_against_tree": tree.total_s / ours >= TARGET_RATIO,
            # By CPU too: kustomize (Go) spreads its work over more than one core, the renderer is one thread.
            "met_against_tree_cpu": tree.cpu_s * tree.total_s / tree.measured_s / ours_cpu >= TARGET_RATIO,
        },
        spec_reference_s={"processes": SPEC_PROCESSES_S, "tree": list(SPEC_TREE_S)},
        notes=notes,
    )


def report(r: Results) -> str:
    o, p, t, ratio, m, e = (
        r.orchestrator,
        r.kustomize_processes,
        r.kustomize_tree,
        r.ratio,
        r.machine,
        r.estate,
    )
    phases = o["phases_s"]
    runs = [f"{x:.2f}" for x in o["runs_wall_s"]]
    lines = [
        f"render benchmark, {r.date}: {m['nproc']} cores ({m['cpu']}), Python {m['python']}, "
        f"kubectl {m['kubectl']}; load average {m['load_average_before'][0]} before, "
        f"{m['load_average_after'][0]} after",
        f"estate: {e['services']} services x {len(e['environments'])} environments x 3 clusters = "
        f"{e['sets']} sets, {e['objects']} objects",
        "",
        f"orchestrator, one process, render + validate + hash: {o['wall_s']:7.2f} s  "
        f"(CPU {o['cpu_s']:.2f} s; median of {len(runs)}: {', '.join(runs)})",
        f"    of which import {phases['import_s']:.2f} s, config {phases['config_s']:.2f} s, "
        f"render + validate {phases['render_s']:.2f} s",
        f"    with the YAML text of every set as well:       {o['with_yaml_text_wall_s']:7.2f} s",
        f"kustomize, {p['how']}: {p['measured_s']:.2f} s for {p['overlays']} (CPU {p['cpu_s']:.2f} s)",
    ]
    if p["extrapolated"]:
        lines.append(f"    EXTRAPOLATED to all {e['sets']} overlays: {p['total_s']:.1f} s")
    lines.append(
        f"kustomize, {t['how']}: {t['measured_s']:.2f} s for {t['overlays']} (CPU {t['cpu_s']:.2f} s)"
    )
    if t["extrapolated"]:
        lines.append(f"    EXTRAPOLATED to all {e['sets']} overlays: {t['total_s']:.1f} s")
    extrapolated = " (extrapolated)"
    lines += [
        "",
        f"ratio against kustomize as processes{extrapolated if p['extrapolated'] else ''}: "
        f"{ratio['processes']:.1f}x (CPU {ratio['processes_cpu']:.1f}x; with YAML text "
        f"{ratio['processes_with_yaml_text']:.1f}x) -- target {ratio['target']:.0f}x "
        f"{'met' if ratio['met_against_processes'] else 'NOT met'}",
        f"ratio against kustomize as a tree{extrapolated if t['extrapolated'] else ''}: "
        f"{ratio['tree']:.1f}x (CPU {ratio['tree_cpu']:.1f}x) -- target {ratio['target']:.0f}x "
        f"{'met' if ratio['met_against_tree'] else 'NOT met'} by wall, "
        f"{'met' if ratio['met_against_tree_cpu'] else 'NOT met'} by CPU",
        f"SPEC §9 reference for kustomize (another machine): {r.spec_reference_s['processes']:.0f} s as "
        f"processes, {r.spec_reference_s['tree'][0]:.0f}-{r.spec_reference_s['tree'][1]:.0f} s as one tree",
        "both sides serial, one process at a time; every kustomize output was checked to hold exactly "
        "the renderer's objects",
    ]
    lines += [f"note: {n}" for n in r.notes]
    return "\n".join(lines)


def _progress(*, quiet: bool) -> Callable[[str], None]:
    def say(message: str) -> None:
        if not quiet:
            print(message, file=sys.stderr, flush=True)

    return say


def _rounded(values: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in values.items()}


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _kubectl_version(kubectl: str) -> str:
    result = subprocess.run([kubectl, "version", "--client"], capture_output=True, text=True)
    parts = [line.split(":", 1)[1].strip() for line in result.stdout.splitlines() if ":" in line]
    return " / kustomize ".join(parts[:2]) or "unknown"


if __name__ == "__main__":
    sys.exit(main())
