"""Every identity command in a subprocess on SQLite and Postgres: bad input and its exit codes, disabled
users, approval twice; and no token, password or hash in any log line, JSON or error (debug logging on)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from orchestrator.store import db
from orchestrator.store.models import AccessRequest, Release
from tests.services.identity import Recorder, stored_hashes

ADMIN_PASSWORD = "admin-pass-4821"
DEV_PASSWORD = "dev-pass-9917"


def test_identity_commands_bad_input_and_no_secret_leaks(tmp_path: Path, each_backend_url: str) -> None:
    db.upgrade(each_backend_url)  # a shared (Postgres) database is migrated on purpose, as in production
    cli = Recorder(tmp_path, each_backend_url)

    cli("whoami", "-o", "json")
    cli("users", "create", "dev@example.com", "--role", "deployer", code=2)  # the first user is an admin
    admin = cli.issue(
        "admin@example.com",
        "--role",
        "admin",
        "--password-stdin",
        command=("users", "create"),
        input=ADMIN_PASSWORD + "\n",
    )
    assert cli.json("whoami")["email"] == "admin@example.com"  # the saved first token
    assert cli.json("whoami", "--token", admin)["token"] == admin[:12] + "…"

    cli("users", "create", "ADMIN@example.com", "--role", "viewer", token=admin, code=2)
    duplicate = cli.runs[-1][1]
    assert "a user with email admin@example.com already exists" in duplicate.stderr
    invalid = cli("users", "create", "not-an-email", "--role", "viewer", token=admin, code=2)
    assert "'not-an-email' is not an email address" in invalid.stderr
    cli("access", "request", "--email", "bad@", "--name", "Bad", code=2)

    request = cli.json("access", "request", "--email", "dev@example.com", "--name", "Dev", "--reason", "ops")
    cli("access", "request", "--email", "dev@example.com", "--name", "Dev", code=2)
    approved = cli.json("access", "approve", request["id"][:8], "--role", "deployer", token=admin)
    assert (approved["status"], approved["reviewed_by"]) == ("approved", "admin@example.com")
    twice = cli("access", "approve", request["id"][:8], "--role", "admin", token=admin, code=1)
    assert "was already approved" in twice.stderr and "nothing changed" in twice.stderr
    other = cli.json("access", "request", "--email", "eve@example.com", "--name", "Eve")
    cli("access", "deny", other["id"], "--reason", "unknown to us", token=admin)
    assert {r["email"]: r["status"] for r in cli.json("access", "list", token=admin)} == {
        "dev@example.com": "approved",
        "eve@example.com": "denied",
    }
    assert cli.json("access", "list", "--status", "pending", token=admin) == []

    handover = cli.issue("--user", "dev@example.com", "--name", "handover", token=admin)
    cli("users", "list", token=handover, code=1)  # a deployer does not manage users
    cli(
        "users",
        "create",
        "dev2@example.com",
        "--role",
        "viewer",
        "--password-stdin",
        token=admin,
        input=DEV_PASSWORD + "\n",
    )
    assert {(u["email"], u["role"]) for u in cli.json("users", "list", token=admin)} == {
        ("admin@example.com", "admin"),
        ("dev@example.com", "deployer"),
        ("dev2@example.com", "viewer"),
    }
    cli("login", "--email", "dev2@example.com", input="wrong-password\n", code=1)
    login = cli("login", "--email", "dev2@example.com", input=DEV_PASSWORD + "\n")
    assert "signed in as dev2@example.com (viewer)" in login.stdout
    assert cli.json("whoami")["email"] == "dev2@example.com"  # login replaced the saved token
    cli("tokens", "list", "--all", code=1)  # viewers see their own tokens only
    refused = cli("access", "list", code=1)
    assert "dev2@example.com (viewer) may not review access requests (viewers only read); allowed" in (
        refused.stderr
    )
    own = cli.json("tokens", "list")
    assert [(t["name"], t["user"], t["state"]) for t in own] == [("login", "dev2@example.com", "active")]

    ci = cli.issue("--name", "ci", "--expires", "1h", token=handover)
    cli("tokens", "create", "--expires", "soon", token=handover, code=2)
    listed = cli.json("tokens", "list", "--all", token=admin)
    assert {t["name"] for t in listed} == {"first token", "handover", "ci", "login"}
    assert all(t["prefix"].startswith("atc_") and len(t["prefix"]) == 13 for t in listed)

    cli("users", "set-role", "dev@example.com", "viewer", token=admin)
    assert cli.json("whoami", token=ci)["role"] == "viewer"
    cli("users", "set-role", "admin@example.com", "deployer", token=admin, code=1)  # the last admin
    cli("users", "disable", "dev@example.com", token=admin)
    disabled = cli("whoami", token=ci, code=1)
    assert f"token {ci[:12]}… (from ORCHESTRATOR_TOKEN) belongs to dev@example.com, who is disabled" in (
        disabled.stderr
    )
    cli("users", "enable", "dev@example.com", token=admin)
    cli("tokens", "revoke", ci[:12], token=handover)
    revoked = cli("whoami", token=ci, code=1)
    assert f"token {ci[:12]}… (from ORCHESTRATOR_TOKEN) is revoked" in revoked.stderr
    malformed = cli("whoami", token="atc_" + ADMIN_PASSWORD, code=1)
    assert "token given (from ORCHESTRATOR_TOKEN) is malformed" in malformed.stderr
    unknown = "atc_" + "A" * 43
    assert "is unknown to this database" in cli("whoami", token=unknown, code=1).stderr
    cli("tokens", "revoke", handover[:12], token=admin, code=0)
    cli("tokens", "revoke", handover[:12], "-o", "json", token=admin)

    # What the database holds, and what must never have been printed.
    engine = db.make_engine(each_backend_url)
    try:
        with db.session_factory(engine)() as session:
            denied = session.scalars(select(AccessRequest).where(AccessRequest.status == "denied")).one()
            assert denied.review_note == "unknown to us" and denied.reviewed_at is not None
    finally:
        engine.dispose()
    assert len(stored_hashes(each_backend_url)) == 2 + 4
    cli.assert_no_secrets_leaked(ADMIN_PASSWORD, DEV_PASSWORD)


def test_the_rollout_controls_check_the_environment_lists_before_acting(
    tmp_path: Path, each_backend_url: str
) -> None:
    """prod: approvers [admin], deployers [admin, deployer]. A paused deployment stays exactly as it was
    when a deployer approves or a viewer aborts it; the refusal happens before any cluster is contacted
    (prod's EKS/AKS/GKE clusters do not exist here)."""
    from orchestrator.store import repository
    from orchestrator.store.models import Deployment, Phase, Strategy
    from orchestrator.store.transitions import Event
    from tests.helpers import copy_estate

    db.upgrade(each_backend_url)
    cli = Recorder(tmp_path, each_backend_url)
    cli.env["ORCHESTRATOR_ROOT"] = str(copy_estate(tmp_path / "estate"))
    admin = cli.issue("admin@example.com", "--role", "admin", command=("users", "create"))
    cli("users", "create", "dev@example.com", "--role", "deployer", token=admin)
    cli("users", "create", "view@example.com", "--role", "viewer", token=admin)
    deployer = cli.issue("--user", "dev@example.com", token=admin)
    viewer = cli.issue("--user", "view@example.com", token=admin)

    engine = db.make_engine(each_backend_url)
    try:
        sessions = db.session_factory(engine)
        with sessions.begin() as session:
            release = repository.get_or_create_release(
                session, service="api", git_commit="c0ffee", image_repository="r/api", manifest_hash="m"
            )
            deployment = repository.create_deployment(
                session,
                release=release,
                environment="prod",
                strategy=Strategy.CANARY,
                clusters=[repository.ClusterPlacement("aws", "aws", "us-west-2", 0)],
            )
            repository.set_phase(session, deployment, Phase.PROGRESSING, event=Event.START)
            repository.set_phase(session, deployment, Phase.PAUSED, event=Event.STEP_PAUSE, step=2)
            ref = str(deployment.id)[:8]

        approve = cli("approve", ref, token=deployer, code=1)
        assert approve.stderr.strip().splitlines()[-1] == (
            "error: dev@example.com (deployer) may not approve in prod; "
            "allowed (prod's approval.approvers): admin"
        )
        abort = cli("abort", ref, token=viewer, code=1)
        assert abort.stderr.strip().splitlines()[-1] == (
            "error: view@example.com (viewer) may not abort in prod (viewers only read); "
            "allowed (prod's deployers): admin, deployer"
        )
        (tmp_path / "state" / "token").unlink()  # the first admin's saved login
        resume = cli("resume", ref, code=1)
        assert "resume in prod needs a token" in resume.stderr
        with sessions() as session:
            after = session.get(Deployment, deployment.id)
            assert after is not None
            assert (after.phase, after.current_step, after.last_event_seq) == ("Paused", 2, 3)
    finally:
        engine.dispose()
    cli.assert_no_secrets_leaked()


def test_migrating_and_pushing_need_the_token_of_a_user_allowed_to(
    tmp_path: Path, each_backend_url: str
) -> None:
    """`db upgrade`/`downgrade` are for admins and `build --push` for deployers and admins, once there are
    users; an empty database has nobody to ask, so creating its schema runs unchecked. `--token` given
    before the command counts as after it, and beats ORCHESTRATOR_TOKEN."""
    from tests.helpers import copy_estate

    cli = Recorder(tmp_path, each_backend_url, {"ORCHESTRATOR_ROOT": str(copy_estate(tmp_path / "estate"))})
    created = cli("db", "upgrade")
    assert "upgraded from empty (no orchestrator schema)" in created.stdout
    assert "no users yet" not in created.stderr  # no schema, no users table: nobody was asked
    admin = cli.issue("admin@example.com", "--role", "admin", command=("users", "create"))
    cli("users", "create", "dev@example.com", "--role", "deployer", token=admin)
    cli("users", "create", "view@example.com", "--role", "viewer", token=admin)
    deployer = cli.issue("--user", "dev@example.com", token=admin)
    viewer = cli.issue("--user", "view@example.com", token=admin)
    cli.saved_login.unlink()  # the first admin's saved login: from here on every command names its user
    head = db.head_revision()

    assert "migrate the database needs a token" in cli("db", "upgrade", code=1).stderr
    refused = cli("db", "upgrade", token=viewer, code=1)
    assert refused.stderr.strip().splitlines()[-1] == (
        "error: view@example.com (viewer) may not migrate the database (viewers only read); "
        "allowed (admins only): admin"
    )
    refused = cli("db", "downgrade", "0002", "--yes", token=deployer, code=1)
    assert refused.stderr.strip().splitlines()[-1] == (
        "error: dev@example.com (deployer) may not migrate the database; allowed (admins only): admin"
    )
    assert db.current_revision(each_backend_url) == head
    assert "already at" in cli("--token", admin, "db", "upgrade").stdout
    cli("--token", admin, "db", "upgrade", token=viewer)  # --token before the command beats the variable
    cli("--token", viewer, "db", "upgrade", "--token", admin)  # the command's own --token is the last word
    cli("--token", viewer, "db", "upgrade", token=admin, code=1)

    # An older schema with users in it is checked as it is (not migrated first), then migrated by an admin.
    cli("db", "downgrade", "0002", "--yes", token=admin)
    assert db.current_revision(each_backend_url) == "0002"
    assert "migrate the database needs a token" in cli("db", "upgrade", code=1).stderr
    assert db.current_revision(each_backend_url) == "0002"
    upgraded = cli("db", "upgrade", token=admin)
    assert f"upgraded from 0002 (head is {head}) to {head} (head)" in upgraded.stdout

    # build --push: refused before anything is built (there is no Docker build output), bad usage first.
    assert "push images needs a token" in cli("build", "api", "--push", code=1).stderr
    refused = cli("build", "api", "--push", token=viewer, code=1)
    assert refused.stderr.strip().splitlines()[-1] == (
        "error: view@example.com (viewer) may not push images (viewers only read); "
        "allowed (deployers and admins): admin, deployer"
    )
    assert "unknown service" in cli("build", "nosuch", "--push", token=viewer, code=2).stderr.lower()
    assert "nosuch" in cli("build", "api", "--push", "--env", "nosuch", token=viewer, code=2).stderr
    refused = cli("deploy", "api", "--env", "local", token=viewer, code=1)
    assert "view@example.com (viewer) may not deploy in local" in refused.stderr
    engine = db.make_engine(each_backend_url)
    try:
        with db.session_factory(engine)() as session:
            assert session.scalars(select(Release)).all() == []
    finally:
        engine.dispose()
    cli.assert_no_secrets_leaked()
