"""CLI start benchmark: how long `orchestrator <command> --help` (and `--version`) takes in a fresh process.

    python benchmarks/cli_start.py            # every command's --help, 7 runs each, median
    python benchmarks/cli_start.py --runs 3   # fewer runs
    python benchmarks/cli_start.py --json     # the results as JSON
    python benchmarks/cli_start.py --check    # exit 1 when a median is over the budget (0.5 s)

Each figure is a fresh `python -m orchestrator …` process from start to exit, as a user's shell runs it:
the interpreter, the imports `--help` needs and click. The reference is `python -c pass` on the same
interpreter, measured between the commands so that a change in the machine's load reaches both; the ratio
to it says how much the orchestrator adds to bare interpreter start, which travels between machines
better than seconds do. Wall time is the figure the budget is about; the children's CPU time (user +
system) is shown beside it because on a busy machine it moves less.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `orchestrator` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BUDGET_S = 0.5
# Every command and subcommand of `orchestrator`, as a user types it before `--help`.
INVOCATIONS: list[tuple[str, ...]] = [
    (),
    ("render",),
    ("diff",),
    ("drift",),
    ("build",),
    ("deploy",),
    ("status",),
    ("history",),
    ("approve",),
    ("abort",),
    ("pause",),
    ("resume",),
    ("retry",),
    ("promote",),
    ("rollback",),
    ("releases",),
    ("schema",),
    ("sim",),
    ("sim", "up"),
    ("sim", "down"),
    ("sim", "status"),
    ("sim", "faults"),
    ("db",),
    ("db", "upgrade"),
    ("db", "downgrade"),
    ("db", "current"),
    ("access",),
    ("access", "request"),
    ("access", "list"),
    ("access", "approve"),
    ("access", "deny"),
    ("users",),
    ("users", "create"),
    ("users", "list"),
    ("users", "set-role"),
    ("users", "disable"),
    ("users", "enable"),
    ("tokens",),
    ("tokens", "create"),
    ("tokens", "list"),
    ("tokens", "revoke"),
    ("login",),
    ("whoami",),
    ("serve",),
    ("stats",),
    ("worker",),
]


@dataclass
class Figure:
    command: str
    wall_s: float  # median
    cpu_s: float  # median
    ratio: float  # wall time against `python -c pass`
    cpu_ratio: float  # CPU time against `python -c pass`
    within_budget: bool


def timed_run(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall and CPU seconds of one fresh process, run in the repository; it must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(
        argv, capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent, env=env
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed (exit {result.returncode}):\n{result.stderr.strip()}")
    return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def median_of(samples: list[tuple[float, float]]) -> tuple[float, float]:
    """The median wall and the median CPU seconds of `samples` (each a `timed_run`)."""
    return statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)


def measure(runs: int) -> tuple[tuple[float, float], list[Figure]]:
    python = [sys.executable]
    reference: list[tuple[float, float]] = []
    timed: dict[str, list[tuple[float, float]]] = {}
    commands = [("--version",)] + [(*words, "--help") for words in INVOCATIONS]
    timed_run([*python, "-m", "orchestrator", "--help"])  # warm the file cache once; not counted
    for _ in range(runs):
        for words in commands:
            reference.append(timed_run([*python, "-c", "pass"]))
            timed.setdefault(" ".join(words), []).append(timed_run([*python, "-m", "orchestrator", *words]))
    base_wall, base_cpu = median_of(reference)
    figures = []
    for command, samples in timed.items():
        wall, cpu = median_of(samples)
        figures.append(Figure(command, wall, cpu, wall / base_wall, cpu / base_cpu, wall < BUDGET_S))
    return (base_wall, base_cpu), figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="fresh processes per command (median counts)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--check", action="store_true", help=f"exit 1 if a median is over {BUDGET_S} s")
    args = parser.parse_args(argv)
    (base_wall, base_cpu), figures = measure(max(1, args.runs))
    over = [f.command for f in figures if not f.within_budget]
    if args.json:
        print(
            json.dumps(
                {
                    "python": platform.python_version(),
                    "runs": args.runs,
                    "budget_s": BUDGET_S,
                    "python_c_pass": {"wall_s": base_wall, "cpu_s": base_cpu},
                    "commands": [asdict(f) for f in figures],
                    "over_budget": over,
                },
                indent=2,
            )
        )
    else:
        width = max(len(f.command) for f in figures) + len("orchestrator ")
        ratios = "x python -c pass: wall, cpu"
        print(f"{'command':<{width}}  {'wall (median)':>13}  {'cpu':>7}  {ratios:>28}")
        base = f"{base_wall * 1000:>10.0f} ms  {base_cpu * 1000:>4.0f} ms"
        print(f"{'python -c pass':<{width}}  {base}  {1:>20.1f}  {1:>5.1f}")
        for f in figures:
            mark = "" if f.within_budget else f"  over {BUDGET_S} s"
            print(
                f"{'orchestrator ' + f.command:<{width}}  {f.wall_s * 1000:>10.0f} ms  "
                f"{f.cpu_s * 1000:>4.0f} ms  {f.ratio:>20.1f}  {f.cpu_ratio:>5.1f}{mark}"
            )
        slowest = max(figures, key=lambda f: f.wall_s)
        print(
            f"\nslowest: orchestrator {slowest.command}, {slowest.wall_s * 1000:.0f} ms "
            f"({slowest.ratio:.1f}x python -c pass); budget {BUDGET_S * 1000:.0f} ms: "
            + ("met" if not over else f"NOT met by {len(over)} command(s)")
        )
    return 1 if args.check and over else 0


if __name__ == "__main__":
    sys.exit(main())
