"""A GitHub release published while its commit's first rollout still runs, on Postgres with a worker.

Kargo's freight moves one stage on once the stage before has verified it: the promotion the release asks
for waits for the environment before to finish rolling the release out, goes once that rollout Succeeds,
and is refused (nothing promoted, the request Failed with the reason) when it ends any other way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from orchestrator.store.models import Deployment, RequestStatus
from tests.e2e.webhook_estate import Estate, webhook_estate
from tests.helpers import run_cli
from tests.webhook_helpers import commit_change, deliver, git, release_payload, workflow_run_payload

pytestmark = pytest.mark.postgres

# The api's canary stops at an indefinite pause: its first rollout is still running when the release comes.
PAUSED_CANARY = """strategy:
  canary:
    steps:
      - setWeight: 20
      - pause: {}
      - setWeight: 60
"""


@pytest.fixture
def estate(
    tmp_path: Path, running_sim: dict[str, str], make_postgres_database: Callable[[], str]
) -> Iterator[Estate]:
    url = make_postgres_database()
    with webhook_estate(
        tmp_path, running_sim, url, promotion="[local, local-prod]", strategy=PAUSED_CANARY
    ) as here:
        yield here


def api_in(estate: Estate, environment: str) -> list[Deployment]:
    return [d for d in estate.deployments() if d.environment == environment]


def first_rollout_paused_then_released(estate: Estate) -> Deployment:
    """A workflow run deploys a commit to local, where the api's canary pauses (its second release there,
    with other values: a first rollout, or one that changes nothing the pods run, has no canary); then a
    release of that commit."""
    estate.worker()
    initial = commit_change(estate.root, "services/api/VERSION", "1\n")
    ran = deliver(estate.base, workflow_run_payload(initial), event="workflow_run", delivery="run-1")
    assert ran.status_code == 202, ran.text
    estate.wait(estate.settled(2), 180, "the first rollouts (api and frontend)")
    pipeline = (estate.root / "pipelines" / "api.yaml").read_text()
    assert "LOG_LEVEL: info" in pipeline
    sha = commit_change(
        estate.root, "pipelines/api.yaml", pipeline.replace("LOG_LEVEL: info", "LOG_LEVEL: debug")
    )
    ran = deliver(estate.base, workflow_run_payload(sha), event="workflow_run", delivery="run-2")
    assert ran.status_code == 202, ran.text
    estate.wait(
        lambda: [d.phase for d in api_in(estate, "local")] == ["Succeeded", "Paused"],
        180,
        "the api's canary paused",
    )
    first = api_in(estate, "local")[-1]

    git(estate.root, "tag", "-a", "v1.0.0", "-m", "first", sha)
    released = deliver(estate.base, release_payload("v1.0.0"), event="release", delivery="release-1")
    assert released.status_code == 202 and released.json()["outcome"] == "queued", released.text
    assert ("api", "local-prod") in [(r["service"], r["environment"]) for r in released.json()["requests"]]
    assert f"api: its release at {sha[:12]} is rolling out in local" in released.json()["reason"]
    assert "it goes on to local-prod once that rollout Succeeds" in released.json()["reason"]
    time.sleep(3)  # the promotion job runs meanwhile, and waits
    assert api_in(estate, "local-prod") == []
    return first


def test_the_promotion_waits_for_the_first_rollout_and_goes_once_it_succeeds(estate: Estate) -> None:
    first = first_rollout_paused_then_released(estate)
    for _ in range(3):  # one pause per wave of local's clusters: each ends with an approve
        approved = run_cli("approve", str(first.id)[:8], env=estate.env)
        assert approved.returncode == 0, approved.stdout + approved.stderr
        if "api in local: Succeeded" in approved.stdout:
            break
    assert [d.phase for d in api_in(estate, "local")] == ["Succeeded", "Succeeded"], approved.stdout

    estate.wait(
        lambda: [d.phase for d in api_in(estate, "local-prod")] == ["AwaitingApproval"],
        120,
        "the api's promotion to local-prod (which requires an approval)",
    )
    promoted = api_in(estate, "local-prod")[0]
    assert (promoted.kind, promoted.actor, promoted.release_id) == ("promote", "github", first.release_id)
    trigger = (promoted.config or {})["trigger"]
    assert (trigger["event"], trigger["delivery"]) == ("release", "release-1")


def test_the_promotion_is_refused_when_the_first_rollout_ends_otherwise(estate: Estate) -> None:
    first = first_rollout_paused_then_released(estate)
    aborted = run_cli("abort", str(first.id)[:8], env=estate.env)
    assert aborted.returncode == 0, aborted.stdout + aborted.stderr
    estate.wait(
        lambda: [d.phase for d in api_in(estate, "local")] == ["Succeeded", "Aborted"], 120, "the abort"
    )

    def refused() -> bool:
        return any(
            r.service == "api" and r.environment == "local-prod" and r.status == RequestStatus.FAILED.value
            for r in estate.requests()
        )

    estate.wait(refused, 60, "the api's promotion request refused")
    request = next(r for r in estate.requests() if r.service == "api" and r.environment == "local-prod")
    assert request.reason is not None and "Succeeded in local" in request.reason, request.reason
    assert request.deployment_id is None
    assert api_in(estate, "local-prod") == []
