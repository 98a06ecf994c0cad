"""`orchestrator build`: one build per commit, pushed by digest, against the real dockerd and docker-registry.

Every test builds in its own git checkout, on this run's own base image, into image repositories whose
names are unique to the test, and pushes to registries it starts itself; all of it is removed afterwards.
"""

# Fixtures imported from tests.services are test parameters below; ruff reads them as redefinitions.
# ruff: noqa: F811

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable

import docker
import pytest
from sqlalchemy import select

from orchestrator.store import db
from orchestrator.store.models import Release
from tests.services.cli import run_orchestrator
from tests.services.docker import DockerJanitor, base_image, docker_client, docker_janitor  # noqa: F401
from tests.services.project import DIGEST, SOURCE_URL, BuildProject, project  # noqa: F401
from tests.services.registry import LocalRegistry, registry, registry_factory  # noqa: F401

Build = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def build(project: BuildProject, docker_janitor: DockerJanitor) -> Build:
    """`orchestrator build ARGS` in the checkout, with the registry credentials given (if any)."""

    def run(
        *args: str, registry: LocalRegistry | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        extra = {"ORCHESTRATOR_DATABASE_URL": project.database_url, **(env or {})}
        if registry is not None:
            docker_janitor.own(f"{registry.host}/")
            extra.setdefault("ORCHESTRATOR_REGISTRY_USERNAME", registry.username)
            extra.setdefault("ORCHESTRATOR_REGISTRY_PASSWORD", registry.password)
        return run_orchestrator("build", *args, cwd=project.root, env=extra)

    return run


def releases(project: BuildProject) -> list[Release]:
    engine = db.make_engine(project.database_url)
    try:
        with db.session_factory(engine)() as session:
            return list(session.scalars(select(Release)))
    finally:
        engine.dispose()


def printed_digest(stdout: str) -> str:
    match = DIGEST.search(stdout)
    assert match, f"no digest line in:\n{stdout}"
    return match.group(1)


# --- build once, push by digest ---------------------------------------------------------------------------


def test_push_prints_the_digest_the_registry_serves_and_a_second_run_builds_nothing(
    project: BuildProject,
    registry: LocalRegistry,
    build: Build,
) -> None:
    commit = project.git("rev-parse", "HEAD")
    first = build("api", "--push", "--registry", f"{registry.host}/team", registry=registry)
    assert first.returncode == 0, first.stderr
    assert "Step 1/" in first.stderr  # the build output is streamed
    digest = printed_digest(first.stdout)

    repository = f"team/{project.repository('api')}"
    for tag in (commit, commit[:7]):
        served = registry.manifest(repository, tag)
        assert served.status_code == 200
        assert served.headers["Docker-Content-Digest"] == digest
    assert registry.tags(repository) == sorted([commit, commit[:7]])
    assert f"pushed: {registry.host}/{repository}@{digest}" in first.stdout

    recorded = releases(project)
    assert [(r.service, r.git_commit, r.image_repository, r.image_digest) for r in recorded] == [
        ("api", commit, f"{registry.host}/{repository}", digest)
    ]

    second = build("api", "--push", "--registry", f"{registry.host}/team", registry=registry)
    assert second.returncode == 0, second.stderr
    assert "Step 1/" not in second.stderr
    assert "already built; nothing rebuilt" in second.stdout
    assert printed_digest(second.stdout) == digest
    assert len(releases(project)) == 1  # the same release, found again


def test_image_carries_oci_labels_and_the_semver_of_the_git_tag(
    project: BuildProject,
    registry: LocalRegistry,
    build: Build,
    docker_client: docker.DockerClient,
) -> None:
    commit = project.git("rev-parse", "HEAD")
    project.git("tag", "v1.4.2")
    project.git("tag", "not-a-version")
    result = build("api", "--push", "--registry", registry.host, "-o", "json", registry=registry)
    assert result.returncode == 0, result.stderr
    view = json.loads(result.stdout)
    assert view["tags"] == [commit, commit[:7], "1.4.2"]
    assert registry.tags(project.repository("api")) == sorted([commit, commit[:7], "1.4.2"])

    labels = docker_client.images.get(f"{registry.host}/{project.repository('api')}:1.4.2").labels
    assert labels["org.opencontainers.image.revision"] == commit
    assert labels["org.opencontainers.image.source"] == SOURCE_URL
    assert labels["org.opencontainers.image.version"] == "1.4.2"
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", labels["org.opencontainers.image.created"])


def test_a_version_tagged_after_the_build_is_added_without_rebuilding(
    project: BuildProject,
    registry: LocalRegistry,
    build: Build,
) -> None:
    first = build("api", "--push", "--registry", registry.host, registry=registry)
    assert first.returncode == 0, first.stderr
    project.git("tag", "v2.0.0")
    second = build("api", "--push", "--registry", registry.host, registry=registry)
    assert second.returncode == 0, second.stderr
    assert "Step 1/" not in second.stderr
    digest = printed_digest(first.stdout)
    assert registry.manifest(project.repository("api"), "2.0.0").headers["Docker-Content-Digest"] == digest


def test_the_image_holds_the_commit_not_uncommitted_edits(
    project: BuildProject,
    registry: LocalRegistry,
    build: Build,
    docker_client: docker.DockerClient,
) -> None:
    (project.root / "services" / "api" / "www" / "index.html").write_text("uncommitted\n")
    result = build("api", "--registry", registry.host, registry=registry)
    assert result.returncode == 0, result.stderr
    commit = project.git("rev-parse", "HEAD")
    served = docker_client.containers.run(
        f"{project.repository('api')}:{commit}", entrypoint=["cat", "/srv/www/index.html"], remove=True
    )
    assert b"uncommitted" not in served
    assert b'"service":"api"' in served


def test_an_older_commit_can_be_built_by_sha(
    project: BuildProject,
    registry: LocalRegistry,
    build: Build,
) -> None:
    old = project.git("rev-parse", "HEAD")
    (project.root / "services" / "api" / "www" / "index.html").write_text("newer\n")
    project.commit_all("newer page")
    result = build("api", "--push", "--commit", old[:10], "--registry", registry.host, registry=registry)
    assert result.returncode == 0, result.stderr
    assert registry.tags(project.repository("api")) == sorted([old, old[:7]])


def test_local_build_without_push_is_reused_for_the_same_commit(project: BuildProject, build: Build) -> None:
    first = build("api")
    assert first.returncode == 0, first.stderr
    assert "Step 1/" in first.stderr
    second = build("api")
    assert second.returncode == 0, second.stderr
    assert "already built" in second.stdout and "Step 1/" not in second.stderr
    assert releases(project) == []  # nothing was pushed, so there is no release


# --- several registries: one build, the same digest everywhere ---------------------------------------------


def test_one_build_is_pushed_to_every_registry_of_the_environments(
    project: BuildProject,
    registry_factory: Callable[..., LocalRegistry],
    build: Build,
    docker_janitor: DockerJanitor,
) -> None:
    east, west = registry_factory(), registry_factory()
    for reg in (east, west):
        docker_janitor.own(f"{reg.host}/")
    project.write_environment(
        "multi",
        {
            "east": {"host": f"{east.host}/images", "usernameEnv": "EAST_USER", "passwordEnv": "EAST_TOKEN"},
            "west": {"host": west.host, "usernameEnv": "WEST_USER", "passwordEnv": "WEST_TOKEN"},
        },
    )
    project.commit_all("multi environment")
    env = {
        "EAST_USER": east.username,
        "EAST_TOKEN": east.password,
        "WEST_USER": west.username,
        "WEST_TOKEN": west.password,
    }
    result = build("api", "--push", "--env", "multi", "-o", "json", env=env)
    assert result.returncode == 0, result.stderr
    view = json.loads(result.stdout)
    digest = view["digest"]
    commit = view["commit"]
    east_name = f"{east.host}/images/{project.repository('api')}"
    west_name = f"{west.host}/{project.repository('api')}"
    assert view["refs"] == {east_name: f"{east_name}@{digest}", west_name: f"{west_name}@{digest}"}
    assert (
        east.manifest(f"images/{project.repository('api')}", commit).headers["Docker-Content-Digest"]
        == digest
    )
    assert west.manifest(project.repository("api"), commit).headers["Docker-Content-Digest"] == digest
    assert result.stderr.count("Step 1/") == 1  # built once
    assert {r.image_repository for r in releases(project)} == set(view["refs"])


def test_a_registry_added_later_gets_a_copy_with_the_same_digest_without_a_rebuild(
    project: BuildProject,
    registry_factory: Callable[..., LocalRegistry],
    build: Build,
    docker_janitor: DockerJanitor,
) -> None:
    first_registry, added = registry_factory(), registry_factory()
    docker_janitor.own(f"{first_registry.host}/")
    docker_janitor.own(f"{added.host}/")
    entries = {
        "one": {"host": first_registry.host, "usernameEnv": "ONE_USER", "passwordEnv": "ONE_TOKEN"},
        "two": {"host": added.host, "usernameEnv": "TWO_USER", "passwordEnv": "TWO_TOKEN"},
    }
    project.write_environment("before", {"one": entries["one"]})
    project.write_environment("after", entries)
    project.commit_all("environments")
    env = {
        "ONE_USER": first_registry.username,
        "ONE_TOKEN": first_registry.password,
        "TWO_USER": added.username,
        "TWO_TOKEN": added.password,
    }
    first = build("api", "--push", "--env", "before", env=env)
    assert first.returncode == 0, first.stderr
    digest = printed_digest(first.stdout)

    second = build("api", "--push", "--env", "after", "-o", "json", env=env)
    assert second.returncode == 0, second.stderr
    view = json.loads(second.stdout)
    assert view["skipped"] is True and view["digest"] == digest
    assert "Step 1/" not in second.stderr
    assert view["blobsCopied"] >= 2  # the config and at least one layer went across
    commit = view["commit"]
    assert added.manifest(project.repository("api"), commit).headers["Docker-Content-Digest"] == digest
    assert added.tags(project.repository("api")) == sorted([commit, commit[:7]])


# --- bad input: exit 1 naming the instruction or the registry, and no release ------------------------------


def test_a_missing_dockerfile_is_named(
    project: BuildProject,
    registry: LocalRegistry,
    build: Build,
) -> None:
    project.edit_pipeline("api", dockerfile="Missing.Dockerfile")
    project.commit_all("wrong dockerfile")
    result = build("api", "--push", "--registry", registry.host, registry=registry)
    assert result.returncode == 1, result.stderr
    assert "services/api/Missing.Dockerfile does not exist" in result.stderr
    assert releases(project) == []
    assert registry.tags(project.repository("api")) == []


def test_a_failing_run_names_the_instruction_and_shows_its_output(
    project: BuildProject,
    registry: LocalRegistry,
    build: Build,
) -> None:
    dockerfile = project.root / "services" / "api" / "Dockerfile"
    lines = dockerfile.read_text().splitlines()
    lines.insert(
        lines.index("USER ${APP_USER}:${APP_USER}"),
        "RUN echo 'compiling assets' && echo 'boom: no disk' >&2 && exit 3",
    )
    dockerfile.write_text("\n".join(lines) + "\n")
    project.commit_all("a failing step")
    line_number = lines.index("RUN echo 'compiling assets' && echo 'boom: no disk' >&2 && exit 3") + 1

    result = build("api", "--push", "--registry", registry.host, registry=registry)
    assert result.returncode == 1, result.stderr
    error = result.stderr[result.stderr.index("error:") :]
    assert "RUN echo 'compiling assets' && echo 'boom: no disk' >&2 && exit 3" in error
    assert f"services/api/Dockerfile:{line_number}" in error
    assert "returned a non-zero code: 3" in error
    assert "boom: no disk" in error and "compiling assets" in error
    assert releases(project) == []
    assert registry.tags(project.repository("api")) == []


def test_wrong_registry_credentials_name_the_registry(
    project: BuildProject,
    registry: LocalRegistry,
    build: Build,
) -> None:
    result = build(
        "api",
        "--push",
        "--registry",
        registry.host,
        registry=registry,
        env={"ORCHESTRATOR_REGISTRY_PASSWORD": "not-the-password"},
    )
    assert result.returncode == 1
    assert f"registry {registry.host}" in result.stderr
    assert "authentication failed" in result.stderr and f"'{registry.username}'" in result.stderr
    assert releases(project) == []


def test_an_unknown_registry_host_is_named(project: BuildProject, build: Build) -> None:
    result = build("api", "--push", "--registry", "registry.does-not-exist.invalid/team")
    assert result.returncode == 1
    assert (
        "registry registry.does-not-exist.invalid: cannot reach https://registry.does-not-exist.invalid"
        in result.stderr
    )
    assert releases(project) == []


def test_without_docker_the_message_says_what_is_missing(
    project: BuildProject,
    registry: LocalRegistry,
    build: Build,
) -> None:
    # The registry answers (the image is not there yet), but there is no daemon to build with.
    result = build(
        "api",
        "--push",
        "--registry",
        registry.host,
        registry=registry,
        env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"},
    )
    assert result.returncode == 1
    assert "no Docker daemon at unix:///nonexistent/docker.sock (DOCKER_HOST)" in result.stderr
    assert "--image REF" in result.stderr
    assert releases(project) == []


# --- bad configuration: exit 2 ---------------------------------------------------------------------------


def test_bad_configuration_exits_2(
    project: BuildProject, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # In this process (the real `main`, its error mapping included): four fresh interpreters would only
    # add start-up time to the same checks.
    from orchestrator.cli.build import build_command
    from orchestrator.cli.main import cli, main

    if "build" not in cli.commands:
        cli.add_command(build_command)
    monkeypatch.chdir(project.root)
    monkeypatch.setenv("ORCHESTRATOR_DATABASE_URL", project.database_url)

    def exit_code(*args: str) -> tuple[int, str]:
        with pytest.raises(SystemExit) as stopped:
            main(["build", *args])
        return int(stopped.value.code or 0), capsys.readouterr().err

    code, err = exit_code("api", "--push", "--registry", "Not A Host")
    assert code == 2 and "--registry 'Not A Host'" in err
    code, err = exit_code("nope", "--push")
    assert code == 2 and "unknown service 'nope'" in err
    code, err = exit_code("api", "--commit", "0" * 40)
    assert code == 2 and "is not a commit" in err
    code, err = exit_code("api", "--push", "--env", "local")
    assert code == 2 and "names a registry" in err


def test_the_click_command_documents_its_options_and_raises_typed_errors() -> None:
    from click.testing import CliRunner

    from orchestrator.cli.build import build_command
    from orchestrator.errors import UnknownNameError
    from tests.helpers import REPO

    runner = CliRunner()
    shown = runner.invoke(build_command, ["--help"])
    assert shown.exit_code == 0
    for option in ("--push", "--commit SHA", "--env ENV", "--registry HOST[/PATH]", "--output"):
        assert option in shown.output
    unknown = runner.invoke(build_command, ["nope", "--root", str(REPO)])
    assert isinstance(unknown.exception, UnknownNameError)  # main() turns it into exit code 2
