"""`orchestrator --server URL users|access|tokens|whoami …` against `orchestrator serve`: the same output and
exit codes as the local commands on the server's own database, refusals included, and what the server does
takes effect (a password set through it signs in; a revoked token stops working)."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import copy_estate, run_cli
from tests.server_fixtures import serve_process


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[dict[str, str], dict[str, str]]]:
    """The first admin made locally (its token saved in the state folder), `orchestrator serve` on the same
    database; the environments of a local and of a remote command line, both acting as that admin."""
    env = {
        "ORCHESTRATOR_ROOT": str(copy_estate(tmp_path / "estate")),
        "ORCHESTRATOR_STATE_DIR": str(tmp_path / "state"),
        "ORCHESTRATOR_DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite",
    }
    admin = run_cli("users", "create", "admin@example.com", "--role", "admin", env=env)
    assert admin.returncode == 0, admin.stderr
    with serve_process(env, tmp_path / "serve.log") as base:
        yield env, {**env, "ORCHESTRATOR_SERVER": base}


def same(here: subprocess.CompletedProcess[str], there: subprocess.CompletedProcess[str]) -> None:
    assert (here.returncode, here.stdout, here.stderr) == (there.returncode, there.stdout, there.stderr)


def both(env: dict[str, str], remote: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run the command locally and through the server; they must say the same. The remote run's result."""
    here, there = run_cli(*args, env=env), run_cli(*args, env=remote)
    same(here, there)
    return there


def without(view: dict[str, object], *keys: str) -> dict[str, object]:
    return {key: value for key, value in view.items() if key not in keys}


def test_users_through_the_server(served: tuple[dict[str, str], dict[str, str]]) -> None:
    env, remote = served
    # Each change made here to one user and there to another: the same output but for the name.
    changes = (
        ("users", "create", "{}", "--role", "deployer"),
        ("users", "set-role", "{}", "viewer"),
        ("users", "disable", "{}"),
        ("users", "enable", "{}"),
    )
    for change in changes:
        here = run_cli(*(a.format("ops@example.com") for a in change), env=env)
        there = run_cli(*(a.format("dev@example.com") for a in change), env=remote)
        assert here.returncode == there.returncode == 0, there.stderr
        assert here.stdout.replace("ops@", "dev@") == there.stdout
    changed = run_cli("users", "set-role", "dev@example.com", "deployer", "-o", "json", env=remote)
    view = json.loads(changed.stdout)
    assert (view["email"], view["role"], view["status"]) == ("dev@example.com", "deployer", "active")
    both(env, remote, "users", "list")
    both(env, remote, "users", "list", "-o", "json")

    # Refusals: the last admin, nobody by that name, a user already there, not an email, a deployer.
    for args in (
        ("users", "set-role", "admin@example.com", "viewer"),
        ("users", "disable", "nobody@example.com"),
        ("users", "create", "dev@example.com", "--role", "viewer"),
        ("users", "create", "not-an-email", "--role", "viewer"),
    ):
        refused = both(env, remote, *args)
        assert refused.returncode in (1, 2) and refused.stderr.startswith("error: "), refused.stderr
    token = run_cli("tokens", "create", "--user", "dev@example.com", env=env).stdout.strip()
    denied = both(env, remote, "users", "list", "--token", token)
    assert denied.returncode == 1 and "dev@example.com (deployer) may not manage users" in denied.stderr
    assert run_cli("users", "list", "--database-url", "sqlite:///x.db", env=remote).returncode == 2

    # A password given through the server is one `login` accepts, here and through the server; each saves
    # its token where the next command of that machine finds it.
    args = ("users", "create", "pw@example.com", "--role", "viewer", "--password-stdin")
    made = run_cli(*args, env=remote, stdin="correct horse battery\n")
    assert made.returncode == 0 and made.stdout == "created pw@example.com (viewer, active)\n", made.stderr
    state = Path(env["ORCHESTRATOR_STATE_DIR"])
    here_env = {**env, "ORCHESTRATOR_STATE_DIR": str(state.with_name("laptop"))}
    there_env = {**remote, "ORCHESTRATOR_STATE_DIR": str(state.with_name("ci"))}
    for where in (here_env, there_env):
        login = run_cli("login", "--email", "pw@example.com", env=where, stdin="correct horse battery\n")
        assert login.returncode == 0, login.stderr
        assert login.stdout.startswith("signed in as pw@example.com (viewer); token atc_")
        assert login.stdout.endswith(f" saved to {Path(where['ORCHESTRATOR_STATE_DIR']) / 'token'}\n")
        whoami = run_cli("whoami", env=where)
        assert whoami.returncode == 0 and whoami.stdout.startswith("pw@example.com (viewer), token atc_")
    wrong = [
        run_cli("login", "--email", "pw@example.com", env=where, stdin="not the password\n")
        for where in (here_env, there_env)
    ]
    same(*wrong)
    assert wrong[0].returncode == 1 and "wrong email or password for pw@example.com" in wrong[0].stderr


def test_access_requests_through_the_server(served: tuple[dict[str, str], dict[str, str]]) -> None:
    env, remote = served
    ask = ("access", "request", "--name", "Ada", "--org", "Analytical", "--reason", "deploys")
    here = run_cli(*ask, "--email", "ada@example.com", env=env)
    there = run_cli(*ask, "--email", "bob@example.com", env={**remote, "ORCHESTRATOR_TOKEN": "atc_stale"})
    assert here.returncode == there.returncode == 0, there.stderr  # asking needs no token (none is sent)
    pending = re.compile(r"^access request (\w{8}) from (\S+) is pending; .* `orchestrator access approve \1")
    assert pending.match(here.stdout) and pending.match(there.stdout), there.stdout
    assert pending.sub("", here.stdout) == pending.sub("", there.stdout)
    ids = {
        view["email"]: view["id"][:8]
        for view in json.loads(run_cli("access", "list", "-o", "json", env=env).stdout)
    }
    both(env, remote, "access", "list")
    both(env, remote, "access", "list", "--status", "pending", "-o", "json")

    approved = run_cli("access", "approve", ids["bob@example.com"], "--role", "deployer", env=remote)
    assert approved.returncode == 0, approved.stderr
    assert approved.stdout.startswith("approved bob@example.com as deployer; give them a first token")
    denied = run_cli("access", "deny", ids["ada@example.com"], "--reason", "unknown", env=remote)
    assert denied.returncode == 0 and denied.stdout == "denied the access request of ada@example.com\n"
    both(env, remote, "access", "list", "-o", "json")
    again = both(env, remote, "access", "approve", ids["ada@example.com"], "--role", "viewer")
    assert again.returncode == 1 and "denied" in again.stderr
    assert both(env, remote, "access", "approve", "zzzz", "--role", "viewer").returncode == 2
    assert "bob@example.com" in run_cli("users", "list", env=env).stdout  # the approval made the user


def test_tokens_and_whoami_through_the_server(served: tuple[dict[str, str], dict[str, str]]) -> None:
    env, remote = served
    both(env, remote, "whoami")
    both(env, remote, "whoami", "-o", "json")
    assert run_cli("users", "create", "dev@example.com", "--role", "deployer", env=env).returncode == 0

    create = ("tokens", "create", "--user", "dev@example.com", "--name", "ci", "--expires", "never")
    made, local = run_cli(*create, env=remote), run_cli(*create, env=env)
    assert made.returncode == local.returncode == 0, made.stderr
    secret = made.stdout.strip()
    assert made.stdout == f"{secret}\n" and secret.startswith("atc_")  # alone on stdout
    prefix = f"{secret[:12]}…"
    assert made.stderr == f"token {prefix} for dev@example.com (ci, never expires); shown once:\n"
    assert local.stderr == made.stderr.replace(prefix, f"{local.stdout.strip()[:12]}…")

    as_dev = {**remote, "ORCHESTRATOR_TOKEN": secret}
    same(run_cli("whoami", env={**env, "ORCHESTRATOR_TOKEN": secret}), run_cli("whoami", env=as_dev))
    here, there = (
        [without(view, "last_used_at") for view in json.loads(done.stdout)]  # each use of a token marks it
        for done in (run_cli("tokens", "list", "--all", "-o", "json", env=where) for where in (env, remote))
    )
    assert here == there and len(here) == 3
    assert [t["name"] for t in json.loads(run_cli("tokens", "list", "-o", "json", env=as_dev).stdout)] == [
        "ci",
        "ci",
    ]
    dev_local = {**env, "ORCHESTRATOR_TOKEN": secret}
    refused = both(dev_local, as_dev, "tokens", "list", "--user", "admin@example.com")
    assert refused.returncode == 1, refused.stderr

    revoked = run_cli("tokens", "revoke", prefix, env=remote)
    assert revoked.returncode == 0 and revoked.stdout == f"token {prefix} of dev@example.com revoked\n"
    twice = both(env, remote, "tokens", "revoke", prefix)
    assert twice.stdout.startswith(f"token {prefix} of dev@example.com was already revoked (")
    both(env, remote, "tokens", "revoke", "atc_nosuchtoken")
    gone = run_cli("whoami", env=as_dev)
    assert gone.returncode == 1 and "revoked" in gone.stderr, gone.stderr  # it stopped working at once
