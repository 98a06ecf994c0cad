"""Small helpers the test suites share."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def copy_estate(dest: Path) -> Path:
    """A private copy of the reference estate (pipelines, environments, templates) to edit in a test."""
    for folder in ("pipelines", "environments", "templates"):
        shutil.copytree(REPO / folder, dest / folder)
    return dest


def run_cli(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `orchestrator` as a user does: a fresh process, real exit code, captured output (`stdin`: what is
    piped in)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        cwd=cwd or REPO,
        env=full_env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )


def run_benchmark(script: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run `benchmarks/<script>` as its README line says to: a fresh process, captured output."""
    return subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
