"""What CI and packaging promise: the licence as SPDX, generated files ignored, no silent empty test run."""

from __future__ import annotations

import subprocess
import sys
import tomllib

from tests.helpers import REPO


def test_licence_is_an_spdx_expression() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert project["project"]["license"] == "Apache-2.0"
    # A string licence is read by setuptools 77 and later; older ones reject it.
    assert "setuptools>=77" in project["build-system"]["requires"]


def test_generated_schemas_are_ignored_by_git() -> None:
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", ".schemas/pipeline.json"], cwd=REPO, capture_output=True
    )
    assert ignored.returncode == 0


def test_make_fails_when_pytest_collects_nothing() -> None:
    result = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "pytest",
            f"VENV={sys.prefix}",
            "PYTEST_ARGS=-q -p no:cacheprovider tests/unit/test_ci.py -k no_such_test_anywhere",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "make: pytest collected no tests" in result.stderr


def test_ci_scripts_parse() -> None:
    for script in (".ci/run", ".ci/setup.sh"):
        assert subprocess.run(["bash", "-n", script], cwd=REPO).returncode == 0, script


def test_base_image_script_refuses_bad_usage() -> None:
    result = subprocess.run(
        [sys.executable, "scripts/base_image.py", "--help"], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 2
    assert result.stderr == "usage: scripts/base_image.py [NAME]   (default busybox:local)\n"
