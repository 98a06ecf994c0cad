"""`orchestrator build --push` treats the state database as every command does: the embedded SQLite default is
created on first use, a shared Postgres database must be migrated on purpose; and once it has users, a push
needs a deployer's or an admin's token and records the release under that user."""

# Fixtures imported from tests.services are test parameters below; ruff reads them as redefinitions.
# ruff: noqa: F811

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.services.cli import run_orchestrator
from tests.services.docker import DockerJanitor, base_image, docker_client, docker_janitor  # noqa: F401
from tests.services.project import DIGEST, BuildProject, project  # noqa: F401
from tests.services.registry import LocalRegistry, registry, registry_factory  # noqa: F401


def _push(
    project: BuildProject, registry: LocalRegistry, janitor: DockerJanitor, env: dict[str, str]
) -> tuple[int, str, str]:
    janitor.own(f"{registry.host}/")
    result = run_orchestrator(
        "build",
        "api",
        "--push",
        "--registry",
        f"{registry.host}/team",
        cwd=project.root,
        env={
            "ORCHESTRATOR_REGISTRY_USERNAME": registry.username,
            "ORCHESTRATOR_REGISTRY_PASSWORD": registry.password,
            **env,
        },
    )
    return result.returncode, result.stdout, result.stderr


def test_build_push_on_a_fresh_state_folder_creates_the_embedded_database(
    project: BuildProject,
    registry: LocalRegistry,
    docker_janitor: DockerJanitor,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ORCHESTRATOR_DATABASE_URL", raising=False)  # the default: SQLite in the state folder
    state = tmp_path / "fresh-state"
    code, stdout, stderr = _push(project, registry, docker_janitor, {"ORCHESTRATOR_STATE_DIR": str(state)})
    assert code == 0, stderr
    match = DIGEST.search(stdout)
    assert match, stdout
    with sqlite3.connect(state / "orchestrator.db") as connection:
        query = "SELECT service, image_repository, image_digest FROM releases"
        recorded = connection.execute(query).fetchall()
    assert recorded == [("api", f"{registry.host}/team/{project.repository('api')}", match.group(1))]


def test_build_push_to_an_unmigrated_postgres_says_to_migrate_it_before_building(
    project: BuildProject,
    registry: LocalRegistry,
    docker_janitor: DockerJanitor,
    make_postgres_database: Callable[[], str],
) -> None:
    url = make_postgres_database()
    code, stdout, stderr = _push(project, registry, docker_janitor, {"ORCHESTRATOR_DATABASE_URL": url})
    assert code == 1, stdout + stderr
    assert "has no orchestrator tables yet; run `orchestrator db upgrade`" in stderr
    assert "Step 1/" not in stderr  # refused before building
    assert registry.tags(f"team/{project.repository('api')}") == []


def test_build_push_needs_a_deployer_and_records_the_release_under_them(
    project: BuildProject,
    registry: LocalRegistry,
    docker_janitor: DockerJanitor,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ORCHESTRATOR_DATABASE_URL", raising=False)
    monkeypatch.delenv("ORCHESTRATOR_TOKEN", raising=False)
    state = tmp_path / "state"
    env = {"ORCHESTRATOR_STATE_DIR": str(state)}

    def cli(*args: str) -> str:
        result = run_orchestrator(*args, cwd=project.root, env=env)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip().splitlines()[-1]

    admin = cli("users", "create", "admin@example.com", "--role", "admin")
    for email, role in (("dev@example.com", "deployer"), ("view@example.com", "viewer")):
        cli("users", "create", email, "--role", role, "--token", admin)
    deployer = cli("tokens", "create", "--user", "dev@example.com", "--token", admin)
    viewer = cli("tokens", "create", "--user", "view@example.com", "--token", admin)
    (state / "token").unlink()  # the first admin's saved login

    code, stdout, stderr = _push(project, registry, docker_janitor, {**env, "ORCHESTRATOR_TOKEN": viewer})
    assert code == 1, stdout + stderr
    assert "view@example.com (viewer) may not push images (viewers only read)" in stderr
    assert "Step 1/" not in stderr  # refused before building
    assert registry.tags(f"team/{project.repository('api')}") == []

    code, stdout, stderr = _push(project, registry, docker_janitor, {**env, "ORCHESTRATOR_TOKEN": deployer})
    assert code == 0, stderr
    match = DIGEST.search(stdout)
    assert match, stdout
    with sqlite3.connect(state / "orchestrator.db") as connection:
        recorded = connection.execute("SELECT image_digest, created_by FROM releases").fetchall()
    assert recorded == [(match.group(1), "dev@example.com")]
