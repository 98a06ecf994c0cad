"""Build once, then deploy: the Deployment runs the image the build pushed, pinned by digest."""

# Fixtures imported from tests.services are test parameters below; ruff reads them as redefinitions.
# ruff: noqa: F811

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.services.cli import run_orchestrator
from tests.services.docker import DockerJanitor, base_image, docker_client, docker_janitor  # noqa: F401
from tests.services.project import DIGEST, BuildProject, project  # noqa: F401
from tests.services.registry import LocalRegistry, registry, registry_factory  # noqa: F401


def test_deploy_after_build_pins_the_built_digest(
    tmp_path: Path, project: BuildProject, registry: LocalRegistry, docker_janitor: DockerJanitor
) -> None:
    docker_janitor.own(f"{registry.host}/")
    env = {
        "ORCHESTRATOR_DATABASE_URL": project.database_url,
        "ORCHESTRATOR_STATE_DIR": str(tmp_path / "state"),
        "ORCHESTRATOR_REGISTRY_USERNAME": registry.username,
        "ORCHESTRATOR_REGISTRY_PASSWORD": registry.password,
    }
    built = run_orchestrator(
        "build", "api", "--push", "--registry", f"{registry.host}/team", cwd=project.root, env=env
    )
    assert built.returncode == 0, built.stderr
    match = DIGEST.search(built.stdout)
    assert match, built.stdout
    digest = match.group(1)

    up = run_orchestrator("sim", "up", cwd=project.root, env=env)
    assert up.returncode == 0, up.stderr
    try:
        deployed = run_orchestrator(
            "deploy", "api", "--env", "local", "--strategy", "rolling", cwd=project.root, env=env
        )
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        kubeconfig = tmp_path / "state" / "sim" / "kubeconfig"
        expected = f"{registry.host}/team/{project.repository('api')}@{digest}"
        for cluster in ("aws", "azure", "gcp"):
            result = subprocess.run(
                [
                    "kubectl",
                    "--kubeconfig",
                    str(kubeconfig),
                    "--context",
                    f"sim-{cluster}",
                    "get",
                    "deployment",
                    "api",
                    "-n",
                    "addtocloud",
                    "-o",
                    "json",
                ],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert result.returncode == 0, result.stderr
            container = json.loads(result.stdout)["spec"]["template"]["spec"]["containers"][0]
            assert container["image"] == expected
    finally:
        run_orchestrator("sim", "down", cwd=project.root, env=env)
