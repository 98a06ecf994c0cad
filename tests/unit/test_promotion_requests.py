"""A promotion's and a rollback's request name what their kind needs, and their commits read as such."""

from __future__ import annotations

import uuid

import pytest
from pydantic import ValidationError

from orchestrator.config import Project
from orchestrator.errors import ConfigError
from orchestrator.rollout.desired import Change, message
from orchestrator.rollout.promotion import previous_environment
from orchestrator.rollout.request import DeployRequest
from orchestrator.store.models import DeploymentKind
from tests.helpers import REPO

BASE = {"service": "api", "environment": "local", "git_commit": "c" * 40}
IDS = {"release_id": uuid.uuid4(), "source_deployment": uuid.uuid4(), "undoes": uuid.uuid4()}


def test_each_kind_names_exactly_what_it_needs() -> None:
    assert DeployRequest(**BASE).kind is DeploymentKind.DEPLOY
    promote = DeployRequest(**BASE, kind=DeploymentKind.PROMOTE, release_id=IDS["release_id"],
                            source_deployment=IDS["source_deployment"])  # fmt: skip
    assert DeployRequest.from_record(promote.to_record(), deployment="d") == promote
    assert DeployRequest(**BASE, kind=DeploymentKind.ROLLBACK, **IDS).undoes == IDS["undoes"]
    with pytest.raises(ValidationError, match="a rollback request needs undoes"):
        DeployRequest(**BASE, kind=DeploymentKind.ROLLBACK, release_id=IDS["release_id"],
                      source_deployment=IDS["source_deployment"])  # fmt: skip
    with pytest.raises(ValidationError, match="a deploy request does not take release_id"):
        DeployRequest(**BASE, release_id=IDS["release_id"])
    with pytest.raises(ValidationError, match="a promote request needs release_id, source_deployment"):
        DeployRequest(**BASE, kind=DeploymentKind.PROMOTE)


def _change(kind: str, **extra: object) -> Change:
    return Change(
        deployment_id=uuid.UUID(int=1), kind=kind, service="api", environment="local",
        release_id=uuid.UUID(int=2), source_commit="c" * 40, image="repo@sha256:" + "a" * 64,
        image_digest="sha256:" + "a" * 64, actor="dev@example.com", sets=[], **extra,  # type: ignore[arg-type]
    )  # fmt: skip


def test_a_rollback_commit_reads_as_a_revert_and_names_what_it_undoes() -> None:
    text = message(_change("rollback", undoes=uuid.UUID(int=3), restores="1" * 40, reverts="2" * 40))
    subject, _, body = text.partition("\n\n")
    assert subject == "Revert api in local to release 00000000"
    assert body.startswith(
        f"This reverts deployment {uuid.UUID(int=3)} (commit {'2' * 40}), restoring the files of commit "
        f"{'1' * 40}."
    )
    assert f"Undoes-Deployment: {uuid.UUID(int=3)}\n" in text and f"Restores-Commit: {'1' * 40}\n" in text
    assert "Kind: rollback\n" in text


def test_a_promotion_commit_names_where_the_release_came_from() -> None:
    subject = message(_change("promote", source_environment="local")).splitlines()[0]
    assert subject == "api: promote release 00000000 from local to local"
    assert message(_change("deploy")).splitlines()[0] == "api: deploy release 00000000 to local"


def test_the_environment_before_the_target_on_its_path() -> None:
    pipeline = Project(REPO).pipeline("api")
    assert previous_environment(pipeline, "local-prod", None) == "local"
    assert previous_environment(pipeline, "prod", "staging") == "staging"
    with pytest.raises(ConfigError, match="dev is the first environment of api's promotion path") as caught:
        previous_environment(pipeline, "dev", None)
    assert caught.value.file == "pipelines/api.yaml" and caught.value.key == "promotion"
    with pytest.raises(ConfigError, match="--from dev: prod is not next after dev"):
        previous_environment(pipeline, "prod", "dev")
