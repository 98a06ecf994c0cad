"""CLI command benchmark: how long commands that do work take in a fresh process, as a user's shell runs them.

    python benchmarks/cli_commands.py                 # each command 7 times, median
    python benchmarks/cli_commands.py --runs 3        # fewer runs
    python benchmarks/cli_commands.py --json          # the results as JSON
    python benchmarks/cli_commands.py --against DIR   # another checkout's code too, run alternately

`benchmarks/cli_start.py` times `--help`; this times commands that read the project, render or open the
state database: `render api --env prod -o json` (3 clusters rendered and validated), `whoami`, `users
list` and `history api --env local` on an embedded SQLite database in a temporary state folder (created
and migrated once before timing, not counted). Each figure is a fresh `python -m orchestrator …`
process from start to exit; the reference is `python -c pass`, measured between the commands so that a
change in the machine's load reaches both. With `--against DIR`, the code of another checkout (a commit
before a change, say) runs the same commands in the same loop, one after the other, so both see the same
machine; its figures are printed beside this checkout's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(REPO))

from benchmarks.cli_start import median_of, timed_run  # noqa: E402  (after the path is set)

COMMANDS: list[tuple[str, ...]] = [
    ("render", "api", "--env", "prod", "-o", "json"),
    ("whoami", "-o", "json"),
    ("users", "list"),
    ("history", "api", "--env", "local"),
]
# How the checkout under DIR runs a command: its `run` (the program's entry point since 2026-12-04),
# else its `main`.
_PROGRAM = (
    "import sys; sys.path.insert(0, sys.argv[1]); sys.argv = ['orchestrator', *sys.argv[2:]]; "
    "import orchestrator.cli as cli; getattr(cli, 'run', cli.main)()"
)


def _median(samples: list[tuple[float, float]]) -> dict[str, float]:
    wall, cpu = median_of(samples)
    return {"wall_s": wall, "cpu_s": cpu}


def measure(runs: int, checkouts: list[Path]) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="cli-commands-") as state:
        env = {
            **os.environ,
            "ORCHESTRATOR_STATE_DIR": state,
            "ORCHESTRATOR_DATABASE_URL": f"sqlite:///{Path(state) / 'orchestrator.db'}",
        }
        env.pop("ORCHESTRATOR_SERVER", None)
        for checkout in checkouts:  # create and migrate the database, warm the file cache: not counted
            warm_up = ["history", "api", "--env", "local"]  # opens the store, so migrates it
            timed_run([sys.executable, "-c", _PROGRAM, str(checkout), *warm_up], env)
        reference: list[tuple[float, float]] = []
        timed: dict[str, dict[str, list[tuple[float, float]]]] = {str(c): {} for c in checkouts}
        for _ in range(runs):
            for words in COMMANDS:
                reference.append(timed_run([sys.executable, "-c", "pass"], env))
                for checkout in checkouts:
                    argv = [sys.executable, "-c", _PROGRAM, str(checkout), *words]
                    timed[str(checkout)].setdefault(" ".join(words), []).append(timed_run(argv, env))
    return {
        "python": platform.python_version(),
        "runs": runs,
        "python_c_pass": _median(reference),
        "checkouts": {
            checkout: {command: _median(samples) for command, samples in figures.items()}
            for checkout, figures in timed.items()
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="fresh processes per command (median counts)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--against", metavar="DIR", help="also time the checkout in DIR, alternately")
    args = parser.parse_args(argv)
    checkouts = [REPO] + ([Path(args.against).resolve()] if args.against else [])
    for checkout in checkouts[1:]:
        if not (checkout / "orchestrator" / "cli").is_dir():
            parser.error(f"--against {checkout}: not a checkout of the orchestrator (no orchestrator/cli)")
    results = measure(max(1, args.runs), checkouts)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    base = results["python_c_pass"]
    assert isinstance(base, dict)
    figures = results["checkouts"]
    assert isinstance(figures, dict)
    names = [str(c) for c in checkouts]
    width = max(len(" ".join(w)) for w in COMMANDS) + len("orchestrator ")
    print(f"median of {args.runs} fresh processes; python -c pass: {base['wall_s'] * 1000:.0f} ms wall")
    print(f"{'command':<{width}}" + "".join(f"  {Path(n).name + ' (wall, cpu)':>24}" for n in names))
    for words in COMMANDS:
        command = " ".join(words)
        cells = "".join(_cell(figures[n][command]) for n in names)
        print(f"{'orchestrator ' + command:<{width}}{cells}")
    return 0


def _cell(figure: dict[str, float]) -> str:
    return f"  {figure['wall_s'] * 1000:>11.0f} ms {figure['cpu_s'] * 1000:>6.0f} ms"


if __name__ == "__main__":
    sys.exit(main())
