"""GitHub `workflow_run` and `release` deliveries to rollouts, on Postgres with an `orchestrator worker`.

The server's checkout has an `origin` (a bare repository) and lags behind it: the commits and tags the
events name are pushed to the origin from another clone, so the server fetches what it is told about.

- a successful workflow run on the default branch deploys its commit to the first environment (actor
  `github`, the delivery recorded, `history` shows it); a second run of the same commit deploys nothing;
- a published release of a tag promotes the release at the tag's commit to the next environment of the
  path, unchanged, through the promotion code (local-prod waits for an approval); once it has reached the
  end of its path, another release of the tag promotes nothing.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from orchestrator.store.models import Deployment, RequestStatus, RolloutRequest
from tests.e2e.webhook_estate import Estate, webhook_estate
from tests.helpers import run_cli
from tests.webhook_helpers import deliver, git, release_payload, workflow_run_payload

pytestmark = pytest.mark.postgres


@pytest.fixture
def estate(
    tmp_path: Path, running_sim: dict[str, str], make_postgres_database: Callable[[], str]
) -> Iterator[Estate]:
    url = make_postgres_database()
    with webhook_estate(tmp_path, running_sim, url, promotion="[local, local-prod]") as here:
        yield here


@pytest.fixture
def upstream(estate: Estate, tmp_path: Path) -> Path:
    """Another clone of the server checkout's origin: what developers push to GitHub."""
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "--quiet", "--bare", "--initial-branch=main", str(origin))
    git(estate.root, "remote", "add", "origin", str(origin))
    git(estate.root, "push", "--quiet", "origin", "main")
    clone = tmp_path / "upstream"
    git(tmp_path, "clone", "--quiet", str(origin), str(clone))
    return clone


def push_upstream(clone: Path, path: str, text: str) -> str:
    (clone / path).write_text(text)
    git(clone, "commit", "--quiet", "-am", f"change {path}")
    git(clone, "push", "--quiet", "origin", "HEAD:main")
    return git(clone, "rev-parse", "HEAD")


def deployments(estate: Estate) -> list[Deployment]:
    with estate.sessions() as session:
        deployed = list(session.scalars(select(Deployment)))
        for deployment in deployed:
            _ = deployment.release  # loaded while the session is open
        order = ("local", "local-prod")
        return sorted(deployed, key=lambda d: (order.index(d.environment), d.service))


def request_statuses(estate: Estate) -> list[str]:
    with estate.sessions() as session:
        return list(session.scalars(select(RolloutRequest.status).order_by(RolloutRequest.id)))


def test_a_workflow_run_deploys_and_a_release_promotes(estate: Estate, upstream: Path) -> None:
    estate.worker()
    sha = push_upstream(upstream, "services/api/VERSION", "1\n")
    lags = subprocess.run(["git", "-C", str(estate.root), "cat-file", "-e", f"{sha}^{{commit}}"], check=False)
    assert lags.returncode != 0  # the server's checkout does not have the commit yet: it fetches it

    ran = deliver(estate.base, workflow_run_payload(sha), event="workflow_run", delivery="run-1")
    assert ran.status_code == 202 and ran.json()["outcome"] == "queued", ran.text
    estate.wait(estate.settled(2), 180, "the workflow run's rollouts")
    deployed = deployments(estate)
    assert [(d.service, d.environment, d.phase, d.actor) for d in deployed] == [
        ("api", "local", "Succeeded", "github"),
        ("frontend", "local", "Succeeded", "github"),
    ]
    assert {d.release.git_commit for d in deployed} == {sha}
    trigger = (deployed[0].config or {})["trigger"]
    assert (trigger["event"], trigger["delivery"], trigger["commit"]) == ("workflow_run", "run-1", sha)
    table = run_cli("history", "api", env=estate.env)
    assert table.returncode == 0 and "github (workflow_run run-1)" in table.stdout, table.stdout

    # The same commit again (a re-run): the environment already runs it.
    rerun = deliver(estate.base, workflow_run_payload(sha), event="workflow_run", delivery="run-2")
    assert rerun.status_code == 202 and rerun.json()["outcome"] == "ignored", rerun.text
    assert f"api: local already runs commit {sha[:12]}" in rerun.json()["reason"]

    # A release of that commit: each service's release moves on to local-prod, which waits for approval.
    git(upstream, "tag", "-a", "v1.0.0", "-m", "first", sha)
    git(upstream, "push", "--quiet", "origin", "v1.0.0")
    released = deliver(estate.base, release_payload("v1.0.0"), event="release", delivery="release-1")
    assert released.status_code == 202, released.text
    assert sorted((r["service"], r["environment"]) for r in released.json()["requests"]) == [
        ("api", "local-prod"),
        ("frontend", "local-prod"),
    ]
    estate.wait(
        lambda: (
            len([d for d in deployments(estate) if d.environment == "local-prod"]) == 2
            and all(
                d.phase == "AwaitingApproval" for d in deployments(estate) if d.environment == "local-prod"
            )
        ),
        180,
        "the promotions",
    )
    verified = {d.service: d for d in deployed}
    for promoted in (d for d in deployments(estate) if d.environment == "local-prod"):
        assert (promoted.kind, promoted.actor) == ("promote", "github")
        assert promoted.release_id == verified[promoted.service].release_id  # the same release, unchanged
        trigger = (promoted.config or {})["trigger"]
        assert (trigger["event"], trigger["delivery"], trigger["commit"]) == ("release", "release-1", sha)
        approved = run_cli("approve", str(promoted.id)[:8], env=estate.env)
        assert approved.returncode == 0, approved.stdout + approved.stderr
    assert {d.phase for d in deployments(estate)} == {"Succeeded"}
    shown = json.loads(run_cli("history", "api", "--env", "local-prod", "-o", "json", env=estate.env).stdout)
    assert shown[0]["trigger"]["delivery"] == "release-1" and shown[0]["kind"] == "promote"
    estate.wait(estate.settled(4), 60, "the promotion requests")
    assert request_statuses(estate) == [RequestStatus.DEPLOYED.value] * 4

    # At the end of its path: another release of the tag promotes nothing, and says why.
    again = deliver(estate.base, release_payload("v1.0.0"), event="release", delivery="release-2")
    assert again.status_code == 202 and again.json()["outcome"] == "ignored", again.text
    assert "api: its release at" in again.json()["reason"]
    assert "already Succeeded in local-prod, the end of local -> local-prod" in again.json()["reason"]
    replayed = deliver(estate.base, release_payload("v1.0.0"), event="release", delivery="release-1")
    assert replayed.status_code == 200 and replayed.json()["outcome"] == "duplicate"
    assert len(deployments(estate)) == 4
