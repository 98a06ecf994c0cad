"""Run `orchestrator build` as a user does: a fresh process, the real exit code and output.

Until the root command registers `build`, the entry point below adds it; once registered, this is exactly
`python -m orchestrator build ...`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

_ENTRY = (
    "from orchestrator.cli.main import cli, main\n"
    "if 'build' not in cli.commands:\n"
    "    from orchestrator.cli.build import build_command\n"
    "    cli.add_command(build_command)\n"
    "main()\n"
)


def run_orchestrator(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-c", _ENTRY, *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
