"""Run `orchestrator` as a user does (`python -m orchestrator`): a fresh process, real exit code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run_orchestrator(
    *args: str,
    cwd: Path,
    env: dict[str, str] | None = None,
    timeout: float = 300,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        input=input,
        text=True,
        timeout=timeout,
    )
