"""A background sim (`orchestrator sim up`) with its own state folder and database, for CLI tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import run_cli


@pytest.fixture
def running_sim(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {
        "ORCHESTRATOR_STATE_DIR": str(tmp_path / "state"),
        "ORCHESTRATOR_DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite",
    }
    up = run_cli("sim", "up", env=env)
    assert up.returncode == 0, up.stderr
    try:
        yield env
    finally:
        run_cli("sim", "down", env=env)
