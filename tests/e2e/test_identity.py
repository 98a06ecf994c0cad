"""Who may deploy, as a user meets it: request access, approval, tokens, a deploy recorded under the user,
a viewer and a revoked token refused with nothing deployed; on SQLite and Postgres, debug logging on, and
no token or hash in anything printed."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import copy_estate
from tests.services.identity import Recorder


def test_request_approve_token_deploy_and_refusals(
    tmp_path: Path, running_sim: dict[str, str], each_backend_url: str
) -> None:
    env = {**running_sim, "ORCHESTRATOR_ROOT": str(copy_estate(tmp_path / "estate"))}
    cli = Recorder(tmp_path, each_backend_url, env)
    if each_backend_url.startswith("postgresql"):
        cli("db", "upgrade")  # a shared database is migrated on purpose; the embedded one on first use

    # No users yet: the local login is the admin, and says so once.
    bootstrap = cli("whoami")
    assert "local login (admin)" in bootstrap.stdout
    assert bootstrap.stderr.count("has no users yet") == 1

    admin = cli.issue("admin@example.com", "--role", "admin", command=("users", "create"))
    assert cli("whoami", token=admin).stdout.strip().startswith("admin@example.com (admin)")

    request = cli.json("access", "request", "--email", "dev@example.com", "--name", "Dev", "--org", "Acme")
    cli("access", "approve", request["id"][:8], "--role", "deployer", token=admin)
    [reviewed] = cli.json("access", "list", token=admin)
    assert (reviewed["status"], reviewed["reviewed_by"]) == ("approved", "admin@example.com")
    assert reviewed["reviewed_at"] is not None

    first = cli.issue("--user", "dev@example.com", "--name", "handover", token=admin)
    deployer = cli.issue("--name", "ci", "--expires", "30d", token=first)
    assert cli.json("whoami", token=deployer)["email"] == "dev@example.com"

    cli("--token", deployer, "deploy", "api", "--env", "local", "--strategy", "rolling")  # before the command
    users = {u["email"]: u for u in cli.json("users", "list", token=admin)}
    [deployment] = cli.json("history", "api")
    assert deployment["phase"] == "Succeeded"
    assert (deployment["actor"], deployment["user_id"]) == ("dev@example.com", users["dev@example.com"]["id"])
    # Every event carries its user: the engine's own steps run on behalf of whoever started the deployment.
    assert {e["type"] for e in deployment["events"]} >= {"created", "phase", "step_completed"}
    assert {e["actor"] for e in deployment["events"]} == {"dev@example.com"}

    viewer_request = cli.json("access", "request", "--email", "view@example.com", "--name", "Viewer")
    cli("access", "approve", viewer_request["id"], "--role", "viewer", token=admin)
    viewer = cli.issue("--user", "view@example.com", token=admin)
    refused = cli("deploy", "api", "--env", "local", "--set", "env.RELEASE=2", token=viewer, code=1)
    assert refused.stderr.strip().splitlines()[-1] == (
        "error: view@example.com (viewer) may not deploy in local (viewers only read); "
        "allowed (local's deployers): admin, deployer"
    )
    assert [d["id"] for d in cli.json("history", "api")] == [deployment["id"]]

    cli("tokens", "revoke", deployer[:12], token=first)
    refused = cli("deploy", "api", "--env", "local", "--set", "env.RELEASE=3", token=deployer, code=1)
    assert (
        refused.stderr.strip()
        .splitlines()[-1]
        .startswith(f"error: token {deployer[:12]}… (from ORCHESTRATOR_TOKEN) is revoked")
    )
    assert deployer not in refused.stdout + refused.stderr
    assert [d["id"] for d in cli.json("history", "api")] == [deployment["id"]]

    # Users exist now: without a token nothing changes (the admin's saved login is the one file read).
    cli.saved_login.unlink()
    anonymous = cli("deploy", "api", "--env", "local", "--strategy", "rolling", code=1)
    assert "deploy in local needs a token" in anonymous.stderr
    assert [d["id"] for d in cli.json("history", "api")] == [deployment["id"]]
    cli.assert_no_secrets_leaked()
