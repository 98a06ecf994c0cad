"""Pull-request mode as users meet it: `promote` to an environment with `gitops.mode: pull-request` pushes a
branch to the GitOps remote and opens a pull request (the real github3.py, in the CLI's process, against a
local HTTPS fake of GitHub trusted through the private CA given as `caBundle`); nothing is applied until
the signed `pull_request` webhook says it was merged, and then what rolls out is what the merge commit
holds (a reviewer's change on the branch included). Unsigned or forged events are 401 and move nothing; a
replay rolls nothing out twice; a pull request closed unmerged cancels the deployment, nothing applied.

The GitOps remote is a bare repository on disk that the fake "hosts": its merge button is a real git merge
there, so the orchestrator reads the merged files by fetching the branch, as it would from GitHub.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from orchestrator.server.app import create_app
from orchestrator.server.settings import ServerSettings
from orchestrator.server.signatures import sign
from orchestrator.server.webhook_settings import WebhookSettings
from orchestrator.store import repository as repo
from orchestrator.store.models import Deployment, WebhookDelivery
from tests.e2e.test_deploy_cli import CLUSTERS, kubectl_json
from tests.e2e.test_promote_cli import IMAGE_A, git_estate, live_api
from tests.fakes.github import FakeGitHub
from tests.server_fixtures import serving
from tests.services.identity import Cli
from tests.webhook_helpers import SECRET, deliver

TOKEN_ENV = "FAKE_GITHUB_TOKEN"


def git(*args: str, cwd: Path | None = None) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def wait(done: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@pytest.fixture
def gitops_remote(tmp_path: Path) -> Path:
    """The GitOps repository GitHub hosts: bare, with a first commit on main (GitHub needs a base)."""
    remote = tmp_path / "gitops.git"
    git("init", "--quiet", "--bare", "--initial-branch=main", str(remote))
    seed = tmp_path / "seed"
    git("clone", "--quiet", str(remote), str(seed))
    (seed / "README.md").write_text("desired state\n")
    git("add", "-A", cwd=seed)
    git("commit", "--quiet", "-m", "first", cwd=seed)
    git("push", "--quiet", "origin", "HEAD:main", cwd=seed)
    return remote


@pytest.fixture
def github(gitops_remote: Path) -> Iterator[FakeGitHub]:
    with FakeGitHub(repo="gitops", git_dir=gitops_remote) as fake:
        yield fake


@pytest.fixture
def setting(
    tmp_path: Path, running_sim: dict[str, str], gitops_remote: Path, github: FakeGitHub
) -> tuple[Cli, Path]:
    root = git_estate(tmp_path / "estate", approval=False)
    prod = root / "environments" / "local-prod.yaml"
    prod.write_text(
        prod.read_text()
        + "gitops:\n"
        + f"  repository: {gitops_remote}\n"
        + "  mode: pull-request\n"
        + "  github:\n"
        + "    repository: addtocloud/gitops\n"
        + f"    apiUrl: {github.api_url}\n"
        + f"    tokenEnv: {TOKEN_ENV}\n"
        + f"    caBundle: {github.ca_path}\n"
    )
    git("add", "-A", cwd=root)
    git("commit", "--quiet", "-m", "local-prod in pull-request mode", cwd=root)
    env = {**running_sim, "ORCHESTRATOR_ROOT": str(root), TOKEN_ENV: github.token}
    return Cli(tmp_path, env), root


@pytest.fixture
def server(setting: tuple[Cli, Path], monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Any]]:
    cli, root = setting
    for name, value in cli.env.items():
        monkeypatch.setenv(name, value)
    settings = ServerSettings(
        root=root,
        state_dir=Path(cli.env["ORCHESTRATOR_STATE_DIR"]),
        database_url=cli.env["ORCHESTRATOR_DATABASE_URL"],
        webhooks=WebhookSettings(github_secret=SECRET, github_repository="addtocloud/platform"),
    )
    app = create_app(settings)
    with serving(app) as base:
        yield base, app.state.sessions


def promoted(cli: Cli) -> dict[str, Any]:
    assert cli("deploy", "api", "--env", "local", "--image", IMAGE_A).returncode == 0
    done = cli("promote", "api", "--to", "local-prod")
    assert done.returncode == 0, done.stdout + done.stderr
    [deployment] = cli.json("history", "api", "--env", "local-prod")
    assert deployment["phase"] == "AwaitingMerge", deployment
    deployment["stdout"] = done.stdout
    return deployment


def untouched(cli: Cli) -> bool:
    """Nothing of the api in the production namespace of any cluster."""
    for cluster in CLUSTERS:
        try:
            kubectl_json(cli.env, cluster, "get", "deployment", "api", "-n", "addtocloud-prod")
        except AssertionError:  # kubectl found no such Deployment
            continue
        return False
    return True


def phase_of(sessions: Any, deployment_id: str) -> str:
    with sessions() as session:
        return str(repo.get_deployment(session, uuid.UUID(deployment_id)).phase)


def deliveries(sessions: Any) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(WebhookDelivery)) or 0)


def review_change(remote: Path, tmp_path: Path, branch: str) -> None:
    """A reviewer pushes a change to the pull request's branch: LOG_LEVEL info -> warn in every file."""
    work = tmp_path / "review"
    git("clone", "--quiet", "--branch", branch, str(remote), str(work))
    changed = 0
    for path in (work / "local-prod").glob("*/api.yaml"):
        text, count = re.subn(r"(name: LOG_LEVEL\n\s+value: )info", r"\1warn", path.read_text())
        assert count == 1, path.read_text()
        path.write_text(text)
        changed += 1
    assert changed == len(CLUSTERS)
    git("commit", "--quiet", "-am", "review: quieter logs", cwd=work)
    git("push", "--quiet", "origin", f"HEAD:{branch}", cwd=work)


def test_promote_opens_a_pull_request_and_its_signed_merge_rolls_out_what_was_merged(
    tmp_path: Path,
    setting: tuple[Cli, Path],
    server: tuple[str, Any],
    github: FakeGitHub,
    gitops_remote: Path,
) -> None:
    cli, _root = setting
    base, sessions = server
    deployment = promoted(cli)
    identifier = deployment["id"]
    [(number, pull)] = github.pulls.items()
    assert f"pull request: https://github.example/addtocloud/gitops/pull/{number}" in deployment["stdout"]
    release = deployment["release"]["id"][:8]
    assert pull["head"] == f"orchestrator/local-prod/api-{identifier}"
    assert pull["base"] == "main"
    assert pull["title"] == f"api: promote release {release} from local to local-prod"
    assert f"deployment `{identifier}`" in pull["body"]
    for cluster in CLUSTERS:
        assert f"`local-prod/{cluster}/api.yaml`" in pull["body"]
    assert "Kind: promote" in pull["body"] and f"Deployment-Id: {identifier}" in pull["body"]
    # The branch holds the files; the environment's branch does not yet, and no cluster was touched.
    assert git("--git-dir", str(gitops_remote), "ls-tree", "--name-only", "-r", "main") == "README.md"
    assert untouched(cli)
    assert deployment["pull_request"]["number"] == number and deployment["gitops_commit"] is None

    review_change(gitops_remote, tmp_path, pull["head"])
    event = github.merge(number, by="octo-reviewer")
    merge_commit = event["pull_request"]["merge_commit_sha"]

    # Unsigned and forged events: 401, nothing recorded, nothing moves.
    body = json.dumps(event).encode()
    for signature in ("", "sha256=" + "0" * 64, sign(b"not the secret", body)):
        refused = deliver(base, body, event="pull_request", signature=signature)
        assert refused.status_code == 401, refused.text
    assert deliveries(sessions) == 0 and phase_of(sessions, identifier) == "AwaitingMerge"
    assert untouched(cli)

    answer = deliver(base, body, event="pull_request", delivery="merge-1")
    assert answer.status_code == 202, answer.text
    assert answer.json()["outcome"] == "queued" and answer.json()["deployment"] == identifier
    wait(lambda: phase_of(sessions, identifier) == "Succeeded", 180, "the merged rollout")

    [done] = cli.json("history", "api", "--env", "local-prod")
    assert done["gitops_commit"] == merge_commit
    assert done["pull_request"]["merge_commit"] == merge_commit
    assert done["pull_request"]["merged_by"] == "octo-reviewer"
    for cluster in CLUSTERS:
        live = live_api(cli.env, cluster, "addtocloud-prod")
        assert live["image"] == IMAGE_A
        assert live["env"]["LOG_LEVEL"] == "warn"  # the reviewer's change: what was merged rolls out

    # A replay: the same delivery is a duplicate; a new delivery id finds nobody waiting. No second rollout.
    again = deliver(base, body, event="pull_request", delivery="merge-1")
    assert again.status_code == 200 and again.json()["outcome"] == "duplicate"
    other = deliver(base, body, event="pull_request", delivery="merge-2")
    assert other.status_code == 202 and other.json()["outcome"] == "ignored", other.text
    assert "no deployment waits on pull request addtocloud/gitops#1" in other.json()["reason"]
    time.sleep(1)
    with sessions() as session:
        rows = session.scalars(select(Deployment).where(Deployment.environment == "local-prod")).all()
        assert [d.phase for d in rows] == ["Succeeded"]
        kinds = [e.type for e in repo.events_for(session, rows[0].id)]
    assert kinds.count("committed") == 1 and kinds.count("pull_request_merged") == 1


def test_a_pull_request_closed_unmerged_cancels_the_promotion_and_nothing_rolls_out(
    setting: tuple[Cli, Path], server: tuple[str, Any], github: FakeGitHub, gitops_remote: Path
) -> None:
    cli, _root = setting
    base, _sessions = server
    identifier = promoted(cli)["id"]
    [number] = github.pulls
    answer = deliver(base, github.close(number), event="pull_request")
    assert answer.status_code == 202 and answer.json()["outcome"] == "cancelled", answer.text
    [cancelled] = cli.json("history", "api", "--env", "local-prod")
    assert cancelled["id"] == identifier
    assert (cancelled["phase"], cancelled["reason"]) == ("Aborted", "PullRequestClosed")
    assert "closed without merging by reviewer; nothing was rolled out" in cancelled["message"]
    assert cancelled["gitops_commit"] is None
    time.sleep(1)
    assert untouched(cli)
    assert git("--git-dir", str(gitops_remote), "ls-tree", "--name-only", "-r", "main") == "README.md"
    # The environment is free again: the next promotion opens a pull request of its own.
    again = cli("promote", "api", "--to", "local-prod")
    assert again.returncode == 0, again.stdout + again.stderr
    assert sorted(github.pulls) == [1, 2]
