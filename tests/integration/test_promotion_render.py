"""A promoted release is rendered for the target with the target's registries and values, the same digest
everywhere, from the pipeline and templates of the release's own commit."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

from orchestrator.build.reference import parse_reference
from orchestrator.config import Project
from orchestrator.rollout.promotion import Source, prepare
from orchestrator.rollout.request import DeployRequest
from orchestrator.store.models import DeploymentKind
from tests.helpers import copy_estate

DIGEST = "sha256:" + "c" * 64


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def built_source(commit: str, environment: str) -> Source:
    request = DeployRequest(
        service="api",
        environment=environment,
        git_commit=commit,
        digest=DIGEST,
        built_repository="ghcr.io/addtocloud/addtocloud/api",
        overrides={"env": {"RELEASE": "7"}},
    )
    image = f"ghcr.io/addtocloud/api@{DIGEST}"
    return Source(environment, uuid.uuid4(), uuid.uuid4(), commit, image, request)


def test_a_built_release_keeps_its_digest_in_every_cloud_registry_and_its_commit_templates(
    tmp_path: Path,
) -> None:
    root = copy_estate(tmp_path / "estate")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "release")
    commit = git(root, "rev-parse", "HEAD")
    pipeline = root / "pipelines" / "api.yaml"
    pipeline.write_text(pipeline.read_text().replace("LOG_LEVEL: info", "LOG_LEVEL: trace"))
    git(root, "commit", "-q", "-am", "later")

    promoted = prepare(Project(root), built_source(commit, "staging"), "prod", actor="dev", user_id=None)
    assert promoted.note is None
    assert promoted.request.kind is DeploymentKind.PROMOTE and promoted.request.git_commit == commit
    images = {s.cluster: s.image for s in promoted.prepared.sets}
    assert images == {
        "aws": f"123456789012.dkr.ecr.us-west-2.amazonaws.com/addtocloud/api@{DIGEST}",
        "azure": f"addtocloud.azurecr.io/addtocloud/api@{DIGEST}",
        "gcp": f"us-central1-docker.pkg.dev/addtocloud/images/addtocloud/api@{DIGEST}",
    }
    assert {parse_reference(image).digest for image in images.values()} == {DIGEST}
    for rendered in promoted.prepared.sets:
        [deployment] = [o for o in rendered.objects if o["kind"] == "Deployment"]
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["LOG_LEVEL"] == "info"  # the release's commit, not HEAD
        assert env["RELEASE"] == "7"  # the --set values it was verified with
        assert env["ADDTOCLOUD_ENVIRONMENT"] == "prod"  # the target's own values


def test_outside_git_the_files_as_they_are_are_rendered_and_said_so(tmp_path: Path) -> None:
    root = copy_estate(tmp_path / "estate")
    promoted = prepare(Project(root), built_source("0" * 40, "local"), "local-prod", actor=None, user_id=None)
    assert promoted.note is not None and "not a git repository" in promoted.note
    assert {s.image for s in promoted.prepared.sets} == {f"ghcr.io/addtocloud/addtocloud/api@{DIGEST}"}
