"""`--help` starts fast because it imports nothing heavy: checked by which modules a fresh process loaded,
not by a clock (the figures are `benchmarks/cli_start.py`'s)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest

from benchmarks.cli_start import INVOCATIONS
from orchestrator.cli.main import COMMANDS, cli
from tests.helpers import REPO, run_benchmark

# Each costs from tens of milliseconds to seconds to import; `--help` needs none of them.
HEAVY = (
    "kubernetes",
    "boto3",
    "botocore",
    "azure",
    "google",
    "sqlalchemy",
    "alembic",
    "docker",
    "scipy",
    "numpy",
    "pydantic",
    "jinja2",
    "structlog",
    "git",
    "httpx",
    "cryptography",
    "rich",
)

# Runs the CLI as `python -m orchestrator` does, then reports every module the process imported.
PROBE = """
import json, runpy, sys
sys.argv = ["orchestrator", *json.loads(sys.argv[1])]
try:
    runpy.run_module("orchestrator", run_name="__main__", alter_sys=True)
except SystemExit as exit:
    code = exit.code
sys.stderr.write("\\nMODULES " + json.dumps({"code": code, "modules": sorted(sys.modules)}) + "\\n")
"""


def loaded_modules(*args: str) -> tuple[int, str, set[str]]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(list(args))],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    marker = result.stderr.rindex("MODULES ")
    report = json.loads(result.stderr[marker + len("MODULES ") :])
    return int(report["code"] or 0), result.stdout, set(report["modules"])


def _heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in HEAVY)


@pytest.mark.parametrize("words", INVOCATIONS, ids=lambda words: " ".join(words) or "orchestrator")
def test_help_imports_no_heavy_module(words: tuple[str, ...]) -> None:
    code, stdout, modules = loaded_modules(*words, "--help")
    assert code == 0
    assert stdout.startswith("Usage: orchestrator")
    assert _heavy(modules) == []


def test_version_imports_no_heavy_module() -> None:
    code, stdout, modules = loaded_modules("--version")
    assert (code, stdout.strip()) == (0, "orchestrator, version 0.1.0")
    assert _heavy(modules) == []


def test_a_command_that_runs_still_loads_what_it_needs(tmp_path: Path) -> None:
    """The probe sees imports: `history` really opens the store (SQLAlchemy), so the check above is not
    vacuous. It writes no log line, so structlog stays unimported (orchestrator.logs imports it for the
    first record that passes the level)."""
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    code, _, modules = loaded_modules("history", "nosuch", "--database-url", url)
    assert code == 2
    assert "sqlalchemy" in modules and "structlog" not in modules


def test_the_benchmark_times_every_command_and_subcommand() -> None:
    listed = {words for words in INVOCATIONS}
    ctx = click.Context(cli)
    expected: set[tuple[str, ...]] = {()}
    for name in COMMANDS:
        expected.add((name,))
        command = cli.get_command(ctx, name)
        if isinstance(command, click.Group):
            expected |= {(name, sub) for sub in command.list_commands(ctx)}
    assert listed == expected


def test_the_command_benchmark_times_each_command_against_python() -> None:
    """`benchmarks/cli_commands.py` runs every command it times to success (a failing one stops it)."""
    from benchmarks.cli_commands import COMMANDS

    result = run_benchmark("cli_commands.py", "--runs", "1", "--json", timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    (figures,) = report["checkouts"].values()
    assert set(figures) == {" ".join(words) for words in COMMANDS}
    assert all(f["wall_s"] > report["python_c_pass"]["wall_s"] for f in figures.values())
