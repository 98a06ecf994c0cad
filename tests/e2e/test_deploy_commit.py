"""`deploy --commit SHA`: a commit other than the checkout's HEAD, rendered from its own tree, locally and
through `orchestrator serve` (GitHub Actions' deploy job names `$GITHUB_SHA`, which the server's checkout
may not be at). The release records that commit, and the clusters run what that commit's pipeline says.
A SHA that is not full, or that neither the checkout nor its origin has, is bad input (exit 2)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_deploy_cli import kubectl_json
from tests.helpers import run_cli
from tests.integration.rollout_fixtures import estate_with_strategy
from tests.server_fixtures import serve_process
from tests.webhook_helpers import git

ROLLING = """strategy:
  rolling: {}
"""


@pytest.fixture
def served(tmp_path: Path, running_sim: dict[str, str]) -> Iterator[tuple[dict[str, str], str, list[str]]]:
    """A checkout with two commits (the api's LOG_LEVEL info, then debug), an admin, `orchestrator serve`
    on it; the environment local commands use, the server's URL and the two SHAs."""
    root = estate_with_strategy(tmp_path / "estate", ROLLING)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "info")
    pipeline = root / "pipelines" / "api.yaml"
    assert "LOG_LEVEL: info" in pipeline.read_text()
    pipeline.write_text(pipeline.read_text().replace("LOG_LEVEL: info", "LOG_LEVEL: debug"))
    git(root, "commit", "-q", "-am", "debug")
    shas = [git(root, "rev-parse", "HEAD~1"), git(root, "rev-parse", "HEAD")]
    env = {**running_sim, "ORCHESTRATOR_ROOT": str(root)}
    admin = run_cli("users", "create", "admin@example.com", "--role", "admin", env=env)
    assert admin.returncode == 0, admin.stderr
    with serve_process(env, tmp_path / "serve.log") as base:
        yield env, base, shas


def log_level(env: dict[str, str], cluster: str) -> Any:
    deployment = kubectl_json(env, cluster, "-n", "addtocloud", "get", "deployment", "api")
    variables = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    return next(v["value"] for v in variables if v["name"] == "LOG_LEVEL")


def newest_commit(env: dict[str, str]) -> str:
    history = json.loads(run_cli("history", "api", "--env", "local", "-o", "json", env=env).stdout)
    return str(history[0]["release"]["git_commit"])


def test_deploy_renders_and_records_the_named_commit(served: tuple[dict[str, str], str, list[str]]) -> None:
    env, base, (first, second) = served
    # HEAD says debug; the first commit, named locally, says info.
    local = run_cli("deploy", "api", "--env", "local", "--commit", first, env=env)
    assert local.returncode == 0, local.stdout + local.stderr
    assert newest_commit(env) == first
    assert {log_level(env, cluster) for cluster in ("aws", "azure", "gcp")} == {"info"}

    # Through the server: the second commit, and back to the first, each rendered from its own tree.
    for sha, level in ((second, "debug"), (first, "info")):
        remote = run_cli("--server", base, "deploy", "api", "--env", "local", "--commit", sha, env=env)
        assert remote.returncode == 0, remote.stdout + remote.stderr
        assert "api in local: Succeeded" in remote.stdout
        assert newest_commit(env) == sha
        assert {log_level(env, cluster) for cluster in ("aws", "azure", "gcp")} == {level}


def test_a_short_or_unknown_commit_is_bad_input(served: tuple[dict[str, str], str, list[str]]) -> None:
    env, base, (first, _) = served
    before = run_cli("history", "api", "-o", "json", env=env).stdout
    for server in ((), ("--server", base)):
        short = run_cli(*server, "deploy", "api", "--env", "local", "--commit", first[:12], env=env)
        assert short.returncode == 2, short.stdout + short.stderr
        assert "is not a full commit SHA" in short.stderr
        unknown = run_cli(*server, "deploy", "api", "--env", "local", "--commit", "0" * 40, env=env)
        assert unknown.returncode == 2, unknown.stdout + unknown.stderr
        assert f"commit {'0' * 40} is not in the checkout" in unknown.stderr
        assert "Traceback" not in short.stderr + unknown.stderr
    assert run_cli("history", "api", "-o", "json", env=env).stdout == before  # nothing recorded


def test_an_older_commits_looser_deployers_list_lets_nobody_past_todays(
    tmp_path: Path, running_sim: dict[str, str]
) -> None:
    # The first commit lets dev@ deploy to local; HEAD no longer does. Deploying the first commit is judged
    # by today's rule too, locally as through the server, and refused before anything is recorded.
    root = estate_with_strategy(tmp_path / "estate", ROLLING)
    local = root / "environments" / "local.yaml"
    local.write_text(local.read_text() + "deployers: [admin, dev@example.com]\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "dev may deploy")
    local.write_text(local.read_text().replace("deployers: [admin, dev@example.com]", "deployers: [admin]"))
    git(root, "commit", "-q", "-am", "only admins deploy")
    older = git(root, "rev-parse", "HEAD~1")
    env = {**running_sim, "ORCHESTRATOR_ROOT": str(root)}
    admin = run_cli("users", "create", "admin@example.com", "--role", "admin", env=env)
    assert admin.returncode == 0, admin.stderr
    admin_env = {**env, "ORCHESTRATOR_TOKEN": admin.stdout.strip().splitlines()[-1]}
    assert run_cli("users", "create", "dev@example.com", "--role", "deployer", env=admin_env).returncode == 0
    token = run_cli("tokens", "create", "--user", "dev@example.com", env=admin_env).stdout.strip()
    dev_env = {**env, "ORCHESTRATOR_TOKEN": token}
    with serve_process(env, tmp_path / "serve.log") as base:
        for server in ((), ("--server", base)):
            refused = run_cli(*server, "deploy", "api", "--env", "local", "--commit", older, env=dev_env)
            assert refused.returncode == 1, refused.stdout + refused.stderr
            assert "dev@example.com (deployer) may not deploy in local" in refused.stderr
            assert "allowed (local's deployers): admin" in refused.stderr
        assert json.loads(run_cli("history", "api", "-o", "json", env=admin_env).stdout) == []


def test_todays_freeze_window_and_approval_hold_back_a_deploy_of_an_older_commit(
    tmp_path: Path, running_sim: dict[str, str]
) -> None:
    # The first commit has neither; since then local gained a freeze window in force, then (the window
    # gone) an approval. A deploy of the first commit is held by each, locally as through the server.
    root = estate_with_strategy(tmp_path / "estate", ROLLING)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "no rules")
    older = git(root, "rev-parse", "HEAD")
    local = root / "environments" / "local.yaml"
    plain = local.read_text()
    now = datetime.now(UTC).replace(microsecond=0)
    start, end = (now - timedelta(hours=1)).isoformat(), (now + timedelta(hours=1)).isoformat()
    local.write_text(plain + f"freezeWindows:\n  - {{start: {start}, end: {end}, reason: audit}}\n")
    git(root, "commit", "-q", "-am", "freeze")
    env = {**running_sim, "ORCHESTRATOR_ROOT": str(root)}
    admin = run_cli("users", "create", "admin@example.com", "--role", "admin", env=env)
    assert admin.returncode == 0, admin.stderr
    admin_env = {**env, "ORCHESTRATOR_TOKEN": admin.stdout.strip().splitlines()[-1]}
    deploy_older = ("deploy", "api", "--env", "local", "--commit", older, "--no-wait", "-o", "json")
    with serve_process(env, tmp_path / "serve.log") as base:
        for server in ((), ("--server", base)):
            frozen = run_cli(*server, *deploy_older, env=admin_env)
            assert frozen.returncode == 1, frozen.stdout + frozen.stderr
            assert f"freeze window from {start} to {end} (audit) is in force" in frozen.stderr
        assert json.loads(run_cli("history", "api", "-o", "json", env=admin_env).stdout) == []

        local.write_text(plain + "approval:\n  required: true\n  approvers: [admin]\n")
        git(root, "commit", "-q", "-am", "approval, no freeze")
        for server in ((), ("--server", base)):
            waiting = run_cli(*server, *deploy_older, env=admin_env)
            assert waiting.returncode == 0, waiting.stdout + waiting.stderr
            assert json.loads(waiting.stdout)["phase"] == "AwaitingApproval"
            aborted = run_cli("abort", json.loads(waiting.stdout)["id"][:8], env=admin_env)
            assert aborted.returncode == 0, aborted.stdout + aborted.stderr
    history = json.loads(run_cli("history", "api", "-o", "json", env=admin_env).stdout)
    assert [(h["phase"], h["release"]["git_commit"]) for h in history] == [("Aborted", older)] * 2
