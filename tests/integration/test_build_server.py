"""`orchestrator --server URL build SERVICE --push`: built and pushed here (real dockerd and registry), the
releases recorded on the server (not in a database of the building machine), so a deploy through the
server rolls out exactly the pushed digest; a token that may not push is refused before anything is built."""

# Fixtures imported from tests.services are test parameters below; ruff reads them as redefinitions.
# ruff: noqa: F811

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from sqlalchemy import select

from orchestrator.store import db
from orchestrator.store.models import Release
from tests.server_fixtures import serve_process
from tests.services.cli import run_orchestrator
from tests.services.docker import DockerJanitor, base_image, docker_client, docker_janitor  # noqa: F401
from tests.services.project import BuildProject, project  # noqa: F401
from tests.services.registry import LocalRegistry, registry, registry_factory  # noqa: F401

GET_API = ("get", "deployment", "api", "-n", "addtocloud", "-o", "json")


def _image_in(kubeconfig: Path, cluster: str) -> str:
    result = subprocess.run(
        [*("kubectl", "--kubeconfig", str(kubeconfig), "--context", f"sim-{cluster}"), *GET_API],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return str(json.loads(result.stdout)["spec"]["template"]["spec"]["containers"][0]["image"])


def test_build_push_through_the_server_records_there_and_deploys_the_digest(
    tmp_path: Path, project: BuildProject, registry: LocalRegistry, docker_janitor: DockerJanitor
) -> None:
    docker_janitor.own(f"{registry.host}/")
    server_env = {
        "ORCHESTRATOR_ROOT": str(project.root),
        "ORCHESTRATOR_DATABASE_URL": project.database_url,
        "ORCHESTRATOR_STATE_DIR": str(tmp_path / "server-state"),
    }
    made = run_orchestrator(
        "users", "create", "admin@example.com", "--role", "admin", cwd=project.root, env=server_env
    )
    assert made.returncode == 0, made.stderr
    admin = (tmp_path / "server-state" / "token").read_text().strip()
    viewer = run_orchestrator(
        "users", "create", "viewer@example.com", "--role", "viewer", cwd=project.root, env=server_env
    )
    assert viewer.returncode == 0, viewer.stderr
    viewer_token = run_orchestrator(
        "tokens", "create", "--user", "viewer@example.com", cwd=project.root, env=server_env
    ).stdout.strip()
    up = run_orchestrator("sim", "up", cwd=project.root, env=server_env)
    assert up.returncode == 0, up.stderr
    try:
        with serve_process(server_env, tmp_path / "serve.log") as base:
            # The building machine: its own state folder (and so its own default database), the server's URL.
            client = {
                "ORCHESTRATOR_STATE_DIR": str(tmp_path / "ci-state"),
                "ORCHESTRATOR_SERVER": base,
                "ORCHESTRATOR_REGISTRY_USERNAME": registry.username,
                "ORCHESTRATOR_REGISTRY_PASSWORD": registry.password,
            }
            push = ("build", "api", "--push", "--registry", f"{registry.host}/team", "-o", "json")
            refused = run_orchestrator(
                *push, cwd=project.root, env={**client, "ORCHESTRATOR_TOKEN": viewer_token}
            )
            assert refused.returncode == 1, refused.stdout + refused.stderr
            assert "viewer@example.com (viewer) may not push images" in refused.stderr
            assert registry.tags(f"team/{project.repository('api')}") == []  # refused before building

            built = run_orchestrator(*push, cwd=project.root, env={**client, "ORCHESTRATOR_TOKEN": admin})
            assert built.returncode == 0, built.stderr
            result = json.loads(built.stdout)
            digest, commit = result["digest"], result["commit"]
            assert commit == project.git("rev-parse", "HEAD") and result["releases"]
            assert not (tmp_path / "ci-state" / "orchestrator.db").exists()  # nothing recorded on the CI side
            sessions = db.open_sessions(project.database_url)
            with sessions() as session:
                recorded = list(session.scalars(select(Release).where(Release.service == "api")))
            assert [str(r.id) for r in recorded] == result["releases"]
            assert (recorded[0].git_commit, recorded[0].image_digest, recorded[0].created_by) == (
                commit,
                digest,
                "admin@example.com",
            )
            db.engine_of(sessions).dispose()

            deploy = ("deploy", "api", "--env", "local", "--strategy", "rolling")
            deployed = run_orchestrator(
                *deploy, cwd=project.root, env={**client, "ORCHESTRATOR_TOKEN": admin}
            )
            assert deployed.returncode == 0, deployed.stdout + deployed.stderr
            kubeconfig = tmp_path / "server-state" / "sim" / "kubeconfig"
            expected = f"{registry.host}/team/{project.repository('api')}@{digest}"
            assert {_image_in(kubeconfig, c) for c in ("aws", "azure", "gcp")} == {expected}

            # A second build of the same commit is a no-op that finds the same releases on the server.
            again = run_orchestrator(*push, cwd=project.root, env={**client, "ORCHESTRATOR_TOKEN": admin})
            assert again.returncode == 0, again.stderr
            assert (
                json.loads(again.stdout)["skipped"]
                and json.loads(again.stdout)["releases"] == result["releases"]
            )
            local_db = ("--database-url", f"sqlite:///{tmp_path}/other.db")
            assert run_orchestrator(*push, *local_db, cwd=project.root, env=client).returncode == 2
    finally:
        run_orchestrator("sim", "down", cwd=project.root, env=server_env)
