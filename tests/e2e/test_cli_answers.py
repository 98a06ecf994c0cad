"""Bad input gets the same answer from every command: exit 2, a one-line message naming what is wrong (and
the names that would have been right), nothing recorded, no traceback."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.helpers import run_cli

KNOWN_SERVICES = "known services: api, frontend"


@pytest.fixture
def private_state(tmp_path: Path) -> dict[str, str]:
    return {
        "ORCHESTRATOR_STATE_DIR": str(tmp_path / "state"),
        "ORCHESTRATOR_DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite",
    }


@pytest.mark.parametrize(
    "args",
    [
        ("history", "nosuch"),
        ("history", "nosuch", "-o", "json"),
        ("status", "nosuch"),
        ("deploy", "nosuch", "--env", "local"),
        ("render", "nosuch", "--env", "local"),
        ("diff", "nosuch", "--env", "local"),
        ("drift", "nosuch"),
        ("drift", "nosuch", "--env", "local", "--exit-code"),
        ("build", "nosuch"),
        ("build", "nosuch", "--push"),
    ],
    ids=lambda args: " ".join(args),
)
def test_an_unknown_service_is_bad_usage_everywhere(
    args: tuple[str, ...], private_state: dict[str, str]
) -> None:
    result = run_cli(*args, env=private_state)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip() == f"error: unknown service 'nosuch'; {KNOWN_SERVICES}"
    assert result.stdout == ""


@pytest.mark.parametrize("command", ["history", "status", "deploy", "drift", "diff"])
def test_an_unknown_environment_is_bad_usage(command: str, private_state: dict[str, str]) -> None:
    result = run_cli(command, "api", "--env", "nosuch", env=private_state)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip() == (
        "error: unknown environment 'nosuch'; known environments: dev, local, local-prod, prod, staging"
    )


def test_history_of_a_known_service_with_no_deployments_is_an_answer(private_state: dict[str, str]) -> None:
    result = run_cli("history", "api", env=private_state)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "No deployments of api yet."
    assert json.loads(run_cli("history", "api", "-o", "json", env=private_state).stdout) == []


@pytest.mark.parametrize(
    ("image", "reason"),
    [
        ("not a ref", "'not a ref' is not a valid repository name part (lower case only)"),
        ("registry.example.com/API:1", "'API' is not a valid repository name part (lower case only)"),
        ("ghcr.io/addtocloud/api@sha256:abc", "the digest must be sha256: followed by 64 hex digits"),
        ("ghcr.io/addtocloud/api:bad/tag:", "'' is not a valid tag"),
    ],
)
@pytest.mark.parametrize("command", ["deploy", "render", "diff"])
def test_an_image_that_is_not_a_reference_is_refused_before_anything_runs(
    command: str, image: str, reason: str, private_state: dict[str, str], tmp_path: Path
) -> None:
    result = run_cli(command, "api", "--env", "local", "--image", image, env=private_state)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Invalid value for '--image': not an image reference: " in result.stderr
    assert reason in result.stderr
    assert "Traceback" not in result.stderr
    # Refused while parsing the command line: no database was even created, so nothing was recorded.
    assert not (tmp_path / "db.sqlite").exists()


def test_a_registry_with_a_port_and_a_digest_is_a_reference(private_state: dict[str, str]) -> None:
    image = "127.0.0.1:5000/addtocloud/api@sha256:" + "a" * 64
    result = run_cli("render", "api", "--env", "local", "--image", image, "-o", "json", env=private_state)
    assert result.returncode == 0, result.stderr
    assert image in result.stdout


def test_history_creates_the_embedded_database_like_every_command(
    private_state: dict[str, str], tmp_path: Path
) -> None:
    assert run_cli("history", "api", env=private_state).returncode == 0
    with sqlite3.connect(tmp_path / "db.sqlite") as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"deployments", "releases", "alembic_version"} <= tables
