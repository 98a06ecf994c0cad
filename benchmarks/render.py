"""Render benchmark (SPEC §9): the orchestrator's renderer against `kubectl kustomize` on the same estate.

    python benchmarks/render.py            # the full run (several minutes: 900 kustomize processes)
    python benchmarks/render.py --quick 60 # 60 overlays, extrapolated to 900, for development
    python benchmarks/render.py --json     # machine-readable results

The estate is the repository's reference estate scaled to 100 services x 3 environments x 3 clusters
(see `benchmarks/estate.py`). The orchestrator side is one fresh `python` process that imports the
package, loads every pipeline and environment, renders every (service, environment, cluster) set,
validates every object against its schema and computes each set's content hash; its wall time, from
process start to exit, is the figure compared. The kustomize side is the equivalent `base/` + 900
overlays, built by `kubectl kustomize` once per overlay (900 processes) and as trees. Before any time
is reported, each kustomize output is checked to hold exactly the objects the renderer made.
Both sides run serially, one process at a time; nothing is spread over cores.
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
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `benchmarks` and `orchestrator` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TARGET_RATIO = 25.0
SPEC_KUSTOMIZE_SECONDS = {"processes": 51.0, "tree": "80-100"}


# --- the orchestrator side, run in a fresh process ---------------------------------------------------


def measure_render(root: Path, *, validate: bool = True, yaml_text: bool = False) -> dict[str, Any]:
    """Render the whole estate under `root` in this process; phases timed from the first import."""
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
    renderer = Renderer(project, validate=validate)
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
    wall_s: float  # the process, start to exit: interpreter, imports, config, render, validation
    cpu_s: float
    phases: dict[str, Any]


def run_render_process(root: Path, *, yaml_text: bool = False) -> RenderRun:
    command = [sys.executable, str(Path(__file__).resolve()), "--measure-render", str(root)]
    if yaml_text:
        command.append("--yaml-text")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"the render process failed (exit {result.returncode}):\n{result.stderr.strip()}")
    return RenderRun(wall, _cpu(after) - _cpu(before), json.loads(result.stdout))


def _cpu(usage: resource.struct_rusage) -> float:
    return usage.ru_utime + usage.ru_stime


# --- the kustomize side ------------------------------------------------------------------------------


@dataclass
class KustomizeRun:
    builds: int  # kustomize processes actually run
    measured_s: float
    cpu_s: float
    total_s: float  # for the whole estate: measured, or extrapolated from a sample
    extrapolated: bool
    overlays: int  # overlays those builds covered
    note: str = ""


def run_overlays(kubectl: str, overlays: Sequence[Any]) -> tuple[float, float, list[str]]:
    """`kubectl kustomize <overlay>` once per overlay, one after another; wall, CPU and outputs."""
    outputs: list[str] = []
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    for overlay in overlays:
        result = subprocess.run([kubectl, "kustomize", str(overlay.path)], capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(f"kubectl kustomize {overlay.path} failed:\n{result.stderr.strip()}")
        outputs.append(result.stdout)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, _cpu(after) - _cpu(before), outputs


def run_tree(kubectl: str, folder: Path) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run([kubectl, "kustomize", str(folder)], capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, _cpu(after) - _cpu(before), result


def sample(items: Sequence[Any], count: int) -> list[Any]:
    """`count` items spread evenly over the sequence (every service, environment and cloud shows up)."""
    if count >= len(items):
        return list(items)
    step = len(items) / count
    return [items[int(i * step)] for i in range(count)]


# --- checking that both sides made the same objects ------------------------------------------------


def check_outputs(
    outputs: Sequence[str], expected: Sequence[list[dict[str, Any]]], what: Sequence[str]
) -> None:
    import yaml

    from benchmarks.estate import object_index

    loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    for text, objects, name in zip(outputs, expected, what, strict=True):
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
    notes: list[str] = field(default_factory=list)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick",
        type=int,
        metavar="N",
        help="build only N overlays with kustomize and "
        "one cluster's tree, and extrapolate (development only)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--services", type=int, default=100, help="services in the estate (default 100)")
    parser.add_argument("--repeat", type=int, default=3, help="render runs; the median counts (default 3)")
    parser.add_argument("--kubectl", default=os.environ.get("KUBECTL", "kubectl"), help="kubectl to run")
    parser.add_argument("--keep", metavar="DIR", help="build the estates in DIR and keep them")
    parser.add_argument("--measure-render", metavar="ROOT", help=argparse.SUPPRESS)
    parser.add_argument("--yaml-text", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.measure_render:
        print(json.dumps(measure_render(Path(args.measure_render), yaml_text=args.yaml_text)))
        return 0
    kubectl = shutil.which(args.kubectl)
    if kubectl is None:
        raise SystemExit(f"{args.kubectl} not found: the benchmark compares against `kubectl kustomize`")

    if args.keep:
        workdir = Path(args.keep).resolve()
        if workdir.exists() and any(workdir.iterdir()):
            raise SystemExit(f"--keep {workdir}: the folder is not empty")
        return _run(args, kubectl, workdir)
    with tempfile.TemporaryDirectory(prefix="render-bench-") as tmp:
        return _run(args, kubectl, Path(tmp))


def _run(args: argparse.Namespace, kubectl: str, workdir: Path) -> int:
    from benchmarks.estate import build_estate, build_kustomize_estate, write_tree
    from orchestrator.config import Project
    from orchestrator.logs import configure_logging
    from orchestrator.render.engine import Renderer
    from orchestrator.render.manifests import environment_hash

    configure_logging("warning")
    say = _progress(quiet=args.json)
    load_before = os.getloadavg()
    estate = build_estate(workdir / "estate", services=args.services)
    say(
        f"estate: {len(estate.services)} services x {len(estate.environments)} environments x 3 clusters "
        f"= {estate.set_count} sets, in {estate.root}"
    )

    # The orchestrator: fresh processes; the median run counts.
    runs = []
    for index in range(args.repeat):
        runs.append(run_render_process(estate.root))
        say(f"render + validate, run {index + 1}: {runs[-1].wall_s:.2f} s")
    chosen = sorted(runs, key=lambda r: r.wall_s)[len(runs) // 2]
    with_text = run_render_process(estate.root, yaml_text=True)
    say(f"render + validate + YAML text: {with_text.wall_s:.2f} s")

    # The same sets in this process, to write the kustomize estate and to check both sides against.
    project = Project(estate.root)
    renderer = Renderer(project, validate=False)
    sets = [
        rendered
        for service in estate.services
        for env in estate.environments
        for rendered in renderer.render_environment(project.pipeline(service), project.environment(env))
    ]
    for key, digest in chosen.phases["hashes"].items():
        service, env = key.split("/")
        mine = environment_hash([s for s in sets if s.service == service and s.environment == env])
        if mine != digest:
            raise SystemExit(
                f"{key}: the timed render and this one disagree; the renderer is not deterministic"
            )
    by_key = {(s.service, s.environment, s.cluster): s for s in sets}
    overlays = build_kustomize_estate(workdir / "kustomize", sets)
    say(f"kustomize estate: {len(overlays)} overlays in {workdir / 'kustomize'}")

    # kustomize, one process per overlay.
    chosen_overlays = sample(overlays, args.quick) if args.quick else overlays
    say(f"kubectl kustomize x {len(chosen_overlays)} ...")
    wall, cpu, outputs = run_overlays(kubectl, chosen_overlays)
    check_outputs(
        outputs,
        [by_key[(o.service, o.environment, o.cluster)].objects for o in chosen_overlays],
        [str(o.path) for o in chosen_overlays],
    )
    scale = len(overlays) / len(chosen_overlays)
    processes = KustomizeRun(
        builds=len(chosen_overlays),
        measured_s=wall,
        cpu_s=cpu,
        total_s=wall * scale,
        extrapolated=scale != 1,
        overlays=len(chosen_overlays),
    )
    say(
        f"kubectl kustomize x {len(chosen_overlays)}: {wall:.1f} s"
        + (f" -> {processes.total_s:.1f} s extrapolated to {len(overlays)}" if processes.extrapolated else "")
    )

    # kustomize, as one tree: every overlay listed by one kustomization.
    whole_wall, _, whole = run_tree(kubectl, write_tree(workdir / "kustomize", overlays))
    notes = []
    if whole.returncode != 0:
        reason = whole.stderr.strip().splitlines()[-1] if whole.stderr.strip() else "no message"
        notes.append(
            f"kustomize refuses the {len(overlays)} overlays as one tree ({whole_wall:.1f} s to say so): "
            "the three clusters of an environment share its namespace, so the same object ids recur; "
            "the tree is built per cluster instead (one kustomization listing that cluster's "
            f"{len(estate.services)} service overlays). kustomize said: {_shorten(reason, 300)}"
        )
    trees = _cluster_trees(workdir / "kustomize", overlays, write_tree)
    chosen_trees = trees[:1] if args.quick else trees
    tree_wall = tree_cpu = 0.0
    for folder, members in chosen_trees:
        seconds, cpu_seconds, result = run_tree(kubectl, folder)
        if result.returncode != 0:
            raise SystemExit(f"kubectl kustomize {folder} failed:\n{result.stderr.strip()}")
        expected = [obj for o in members for obj in by_key[(o.service, o.environment, o.cluster)].objects]
        check_outputs([result.stdout], [expected], [str(folder)])
        tree_wall += seconds
        tree_cpu += cpu_seconds
        say(f"kubectl kustomize {folder.name}: {seconds:.1f} s")
    tree_scale = len(trees) / len(chosen_trees)
    tree = KustomizeRun(
        builds=len(chosen_trees),
        measured_s=tree_wall,
        cpu_s=tree_cpu,
        total_s=tree_wall * tree_scale,
        extrapolated=tree_scale != 1,
        overlays=sum(len(m) for _, m in chosen_trees),
        note="one build per cluster" if whole.returncode != 0 else "",
    )
    if whole.returncode == 0:
        check_outputs([whole.stdout], [[o for s in sets for o in s.objects]], ["the whole tree"])
        tree = KustomizeRun(
            1, whole_wall, 0.0, whole_wall, False, len(overlays), "one build of every overlay"
        )

    ours = chosen.wall_s
    results = Results(
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
            "sets": chosen.phases["sets"],
            "objects": chosen.phases["objects"],
        },
        orchestrator={
            "wall_s": round(ours, 3),
            "cpu_s": round(chosen.cpu_s, 3),
            "runs_wall_s": [round(r.wall_s, 3) for r in runs],
            "phases_s": {k: round(chosen.phases[k], 3) for k in ("import_s", "config_s", "render_s")},
            "with_yaml_text_wall_s": round(with_text.wall_s, 3),
            "yaml_text_bytes": with_text.phases["yaml_bytes"],
            "serial": True,
        },
        kustomize_processes={**_rounded(asdict(processes))},
        kustomize_tree={**_rounded(asdict(tree))},
        ratio={
            "processes": round(processes.total_s / ours, 1),
            "tree": round(tree.total_s / ours, 1),
            "processes_cpu": round(processes.cpu_s * scale / chosen.cpu_s, 1),
            "processes_with_yaml_text": round(processes.total_s / with_text.wall_s, 1),
            "target": TARGET_RATIO,
            "met": min(processes.total_s, tree.total_s) / ours >= TARGET_RATIO,
        },
        notes=notes,
    )
    if args.json:
        print(json.dumps(asdict(results), indent=2))
    else:
        print(_report(results))
    return 0


def _cluster_trees(root: Path, overlays: Sequence[Any], write_tree: Any) -> list[tuple[Path, list[Any]]]:
    """One kustomization per (environment, cluster) listing that cluster's overlay of every service."""
    groups: dict[tuple[str, str], list[Any]] = {}
    for overlay in overlays:
        groups.setdefault((overlay.environment, overlay.cluster), []).append(overlay)
    return [
        (write_tree(root / "trees" / f"{env}-{cluster}", members), members)
        for (env, cluster), members in groups.items()
    ]


def _report(r: Results) -> str:
    o, p, t, ratio = r.orchestrator, r.kustomize_processes, r.kustomize_tree, r.ratio
    m, e = r.machine, r.estate
    lines = [
        f"render benchmark, {r.date}; {m['nproc']} cores ({m['cpu']}), Python {m['python']}, "
        f"kubectl {m['kubectl']}; load average {m['load_average_before'][0]} before, "
        f"{m['load_average_after'][0]} after",
        f"estate: {e['services']} services x {len(e['environments'])} environments x 3 clusters = "
        f"{e['sets']} sets, {e['objects']} objects",
        "",
        f"orchestrator  render + validate, one process:     {o['wall_s']:8.2f} s  (CPU {o['cpu_s']:.2f} s; "
        f"import {o['phases_s']['import_s']:.2f}, config {o['phases_s']['config_s']:.2f}, "
        f"render+validate {o['phases_s']['render_s']:.2f}; median of {len(o['runs_wall_s'])})",
        f"              ... and YAML text of every set:     {o['with_yaml_text_wall_s']:8.2f} s",
        f"kustomize     {p['overlays']} processes{'':18}{p['measured_s']:8.2f} s  (CPU {p['cpu_s']:.2f} s)",
    ]
    if p["extrapolated"]:
        lines.append(f"              EXTRAPOLATED to {r.estate['sets']} overlays:      {p['total_s']:8.2f} s")
    tree_label = f"tree, {t['builds']} build{'s' if t['builds'] != 1 else ''} of {t['overlays']} overlays"
    lines.append(f"kustomize     {tree_label:35}{t['measured_s']:8.2f} s  ({t['note']})")
    if t["extrapolated"]:
        lines.append(f"              EXTRAPOLATED to {r.estate['sets']} overlays:      {t['total_s']:8.2f} s")
    lines += [
        "",
        f"ratio: {ratio['processes']:.1f}x faster than kustomize as processes"
        f"{' (extrapolated)' if p['extrapolated'] else ''}, {ratio['tree']:.1f}x than the tree"
        f"{' (extrapolated)' if t['extrapolated'] else ''}; CPU ratio {ratio['processes_cpu']:.1f}x; "
        f"with YAML text {ratio['processes_with_yaml_text']:.1f}x; target {ratio['target']:.0f}x: "
        f"{'met' if ratio['met'] else 'NOT met'}",
        "both sides serial (one process at a time); every kustomize output checked equal to the renderer's",
    ]
    lines += [f"note: {n}" for n in r.notes]
    return "\n".join(lines)


def _progress(*, quiet: bool) -> Any:
    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    return say if not quiet else (lambda message: None)


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
    result = subprocess.run([kubectl, "version", "--client"], capture_output=True, text=True, check=False)
    parts = [line.split(":", 1)[1].strip() for line in result.stdout.splitlines() if ":" in line]
    return " / kustomize ".join(parts[:2]) or "unknown"


if __name__ == "__main__":
    sys.exit(main())
