"""Who may deploy, as a user meets it: request access, approval, tokens, a deploy recorded under the user,
a viewer and a revoked token refused with nothing deployed."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.helpers import copy_estate
from tests.services.cli import run_orchestrator


class Cli:
    """The CLI in a subprocess with one state folder and database; a token per call when given."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.cwd = cwd
        self.env = env

    def __call__(
        self, *args: str, token: str | None = None, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = {**self.env, "ORCHESTRATOR_TOKEN": token or ""}
        return run_orchestrator(*args, cwd=self.cwd, env=env, input=input)

    def json(self, *args: str, token: str | None = None) -> Any:
        result = self(*args, "-o", "json", token=token)
        assert result.returncode == 0, result.stdout + result.stderr
        return json.loads(result.stdout)

    def token_for(self, *args: str, token: str | None = None) -> str:
        result = self("tokens", "create", *args, token=token)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()


def test_request_approve_token_deploy_and_refusals(tmp_path: Path, running_sim: dict[str, str]) -> None:
    cli = Cli(tmp_path, {**running_sim, "ORCHESTRATOR_ROOT": str(copy_estate(tmp_path / "estate"))})

    # No users yet: the local login is the admin, and says so once.
    bootstrap = cli("whoami")
    assert bootstrap.returncode == 0 and "local login (admin)" in bootstrap.stdout
    assert bootstrap.stderr.count("has no users yet") == 1

    created = cli("users", "create", "admin@example.com", "--role", "admin")
    assert created.returncode == 0, created.stderr
    admin = created.stdout.strip().splitlines()[-1]
    assert admin.startswith("atc_")
    assert cli("whoami", token=admin).stdout.strip().startswith("admin@example.com (admin)")

    request = cli.json("access", "request", "--email", "dev@example.com", "--name", "Dev", "--org", "Acme")
    approved = cli("access", "approve", request["id"][:8], "--role", "deployer", token=admin)
    assert approved.returncode == 0, approved.stderr
    [reviewed] = cli.json("access", "list", token=admin)
    assert (reviewed["status"], reviewed["reviewed_by"]) == ("approved", "admin@example.com")
    assert reviewed["reviewed_at"] is not None

    first = cli.token_for("--user", "dev@example.com", "--name", "handover", token=admin)
    deployer = cli.token_for("--name", "ci", "--expires", "30d", token=first)
    assert cli.json("whoami", token=deployer)["email"] == "dev@example.com"

    deployed = cli("deploy", "api", "--env", "local", "--strategy", "rolling", token=deployer)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    users = {u["email"]: u for u in cli.json("users", "list", token=admin)}
    [deployment] = cli.json("history", "api")
    assert deployment["phase"] == "Succeeded"
    assert (deployment["actor"], deployment["user_id"]) == ("dev@example.com", users["dev@example.com"]["id"])
    # Every event carries its user: the engine's own steps run on behalf of whoever started the deployment.
    assert {e["type"] for e in deployment["events"]} >= {"created", "phase", "step_completed"}
    assert {e["actor"] for e in deployment["events"]} == {"dev@example.com"}

    viewer_request = cli.json("access", "request", "--email", "view@example.com", "--name", "Viewer")
    assert cli("access", "approve", viewer_request["id"], "--role", "viewer", token=admin).returncode == 0
    viewer = cli.token_for("--user", "view@example.com", token=admin)
    refused = cli("deploy", "api", "--env", "local", "--set", "env.RELEASE=2", token=viewer)
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        "error: view@example.com (viewer) may not deploy in local (viewers only read); "
        "allowed (local's deployers): admin, deployer"
    )
    assert [d["id"] for d in cli.json("history", "api")] == [deployment["id"]]

    revoked = cli("tokens", "revoke", deployer[:12], token=first)
    assert revoked.returncode == 0, revoked.stderr
    refused = cli("deploy", "api", "--env", "local", "--set", "env.RELEASE=3", token=deployer)
    assert refused.returncode == 1
    assert refused.stderr.startswith(f"error: token {deployer[:12]}… (from ORCHESTRATOR_TOKEN) is revoked")
    assert deployer not in refused.stdout + refused.stderr
    assert [d["id"] for d in cli.json("history", "api")] == [deployment["id"]]

    # Users exist now: without a token nothing changes (the admin's saved login is the one file read).
    (Path(running_sim["ORCHESTRATOR_STATE_DIR"]) / "token").unlink()
    anonymous = cli("deploy", "api", "--env", "local", "--strategy", "rolling")
    assert anonymous.returncode == 1 and "deploy in local needs a token" in anonymous.stderr
    assert [d["id"] for d in cli.json("history", "api")] == [deployment["id"]]
