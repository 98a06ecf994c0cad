"""The `orchestrator` program ends without the interpreter's teardown (`cli.main.run`), yet exactly as
Python would have ended it: the same exit status, every stream flushed, threads waited for and exit
handlers run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.cli.main import _status_of

# What a command does while `run` drives it (here from a thread that outlives the command): exit
# handlers registered, a temporary folder left for its finalizer, output written and not flushed.
PROBE = """
import atexit, sys, tempfile, threading, time
from orchestrator.cli import run

kept = []

def late() -> None:
    time.sleep(0.3)
    kept.append(tempfile.TemporaryDirectory())  # removed at exit by its finalizer, an exit handler
    print(kept[0].name, file=sys.stderr)
    atexit.register(lambda: print("a later exit handler ran"))
    print("x" * 200_000)  # more than a pipe holds, unflushed when the thread ends

threading.Thread(target=late).start()  # not a daemon: Python waits for it before the exit handlers
sys.argv = ["orchestrator", *sys.argv[1:]]
run()
"""


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("args", "status"), [(("--version",), 0), (("no-such-command",), 2)])
def test_the_program_ends_with_mains_status_after_threads_and_exit_handlers(
    args: tuple[str, ...], status: int
) -> None:
    result = _run(*args)
    assert result.returncode == status, result.stderr
    lines = result.stdout.splitlines()
    assert "x" * 200_000 in lines and "a later exit handler ran" in lines
    if status == 0:
        assert lines[0] == "orchestrator, version 0.1.0"
    else:
        assert "No such command 'no-such-command'" in result.stderr
    folder = next(line for line in result.stderr.splitlines() if line.startswith("/"))
    assert not Path(folder).exists()  # the temporary folder was removed


@pytest.mark.parametrize(("code", "status"), [(None, 0), (0, 0), (2, 2), (130, 130), (256, 0), ("bye", 1)])
def test_exit_codes_map_as_python_maps_them(code: object, status: int) -> None:
    assert _status_of(code) == status
    python = subprocess.run([sys.executable, "-c", f"raise SystemExit({code!r})"], capture_output=True)
    assert python.returncode == status
