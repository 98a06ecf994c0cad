"""Passwords, token shapes and the rules table, without a database."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from orchestrator.config.environment import Environment
from orchestrator.errors import ConfigError, OrchestratorError
from orchestrator.identity import passwords, tokens
from orchestrator.identity.principal import BOOTSTRAP, Principal, find_token, write_token_file
from orchestrator.identity.rules import Action, PermissionDeniedError, allowed, require
from orchestrator.store.models import Role

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _environment(**fields: object) -> Environment:
    return Environment.model_validate(
        {
            "name": "prod",
            "clusters": [
                {
                    "name": "aws",
                    "cloud": "aws",
                    "region": "us-west-2",
                    "weight": 100,
                    "target": {"type": "sim", "cluster": "aws"},
                }
            ],
            **fields,
        }
    )


def test_passwords_hash_with_argon2id_and_verify() -> None:
    hashed = passwords.hash_password("correct horse battery")
    assert hashed.startswith("$argon2id$") and "correct horse" not in hashed
    assert passwords.verify_password(hashed, "correct horse battery")
    assert not passwords.verify_password(hashed, "correct horse battery!")
    assert not passwords.verify_password(passwords.NO_PASSWORD, "anything at all")
    assert not passwords.verify_password("not-a-hash", "anything at all")
    assert passwords.hash_password("same password") != passwords.hash_password("same password")  # salted


def test_a_short_password_is_bad_usage() -> None:
    with pytest.raises(ConfigError, match="at least 8 characters"):
        passwords.hash_password("short")


def test_tokens_are_prefixed_random_and_stored_as_a_hash() -> None:
    first, second = tokens.generate(), tokens.generate()
    assert first.secret.startswith("atc_") and len(first.secret) == 4 + 43
    assert first.secret != second.secret
    assert tokens.is_well_formed(first.secret)
    assert first.prefix == first.secret[:12] and len(first.prefix) <= 16
    assert first.token_hash == tokens.hash_token(first.secret) and len(first.token_hash) == 64
    assert first.secret not in first.token_hash
    assert tokens.display(first.prefix) == first.prefix + "…"


@pytest.mark.parametrize("secret", ["", "atc_", "atc_short", "xyz_" + "a" * 43, "atc_" + "a" * 42 + "!"])
def test_malformed_tokens_are_recognised(secret: str) -> None:
    assert not tokens.is_well_formed(secret)


def test_display_of_a_string_that_is_not_a_token_shows_nothing_of_it() -> None:
    assert tokens.display_of("hunter2-my-password") == "given"


def test_expiry() -> None:
    assert tokens.parse_expiry("30d", NOW) == NOW + timedelta(days=30)
    assert tokens.parse_expiry("12h", NOW) == NOW + timedelta(hours=12)
    assert tokens.parse_expiry("2w", NOW) == NOW + timedelta(weeks=2)
    assert tokens.parse_expiry("never", NOW) is None
    for bad in ("0d", "30", "tomorrow", "-1d"):
        with pytest.raises(ConfigError, match="--expires"):
            tokens.parse_expiry(bad, NOW)


def _user(role: Role, email: str = "dev@example.com") -> Principal:
    return Principal(email=email, role=role)


def test_rules_follow_the_environment_lists() -> None:
    default = _environment()  # deployers: admin, deployer; approvers: admin
    lead_only = _environment(deployers=["lead@example.com"], approval={"approvers": ["qa@example.com"]})
    assert allowed(_user(Role.DEPLOYER), Action.DEPLOY, default)
    assert allowed(_user(Role.ADMIN), Action.ABORT, default)
    assert not allowed(_user(Role.DEPLOYER), Action.APPROVE, default)
    assert allowed(_user(Role.ADMIN), Action.APPROVE, default)
    assert not allowed(_user(Role.ADMIN), Action.DEPLOY, lead_only)
    assert allowed(_user(Role.DEPLOYER, "Lead@Example.com"), Action.DEPLOY, lead_only)
    assert allowed(_user(Role.DEPLOYER, "qa@example.com"), Action.APPROVE, lead_only)
    assert not allowed(_user(Role.DEPLOYER, "qa@example.com"), Action.DEPLOY, lead_only)
    viewer_listed = _environment(deployers=["viewer", "view@example.com"])
    assert not allowed(_user(Role.VIEWER, "view@example.com"), Action.DEPLOY, viewer_listed)
    assert allowed(_user(Role.ADMIN), Action.MANAGE_USERS)
    assert not allowed(_user(Role.DEPLOYER), Action.MANAGE_USERS)
    assert allowed(BOOTSTRAP, Action.DEPLOY, default)


def test_a_refusal_names_user_role_action_environment_and_who_is_allowed() -> None:
    with pytest.raises(PermissionDeniedError) as refused:
        require(_user(Role.VIEWER, "view@example.com"), Action.DEPLOY, _environment())
    assert str(refused.value) == (
        "view@example.com (viewer) may not deploy in prod (viewers only read); "
        "allowed (prod's deployers): admin, deployer"
    )
    with pytest.raises(PermissionDeniedError) as refused:
        require(_user(Role.DEPLOYER), Action.APPROVE, _environment())
    assert str(refused.value) == (
        "dev@example.com (deployer) may not approve in prod; allowed (prod's approval.approvers): admin"
    )
    with pytest.raises(PermissionDeniedError, match="needs a token"):
        require(None, Action.DEPLOY, _environment())


def test_pushing_is_for_deployers_and_admins_and_migrating_for_admins_on_no_environment() -> None:
    assert allowed(_user(Role.DEPLOYER), Action.PUSH) and allowed(_user(Role.ADMIN), Action.PUSH)
    assert allowed(_user(Role.ADMIN), Action.MIGRATE_DATABASE)
    assert not allowed(_user(Role.DEPLOYER), Action.MIGRATE_DATABASE)
    with pytest.raises(PermissionDeniedError) as refused:
        require(_user(Role.VIEWER, "view@example.com"), Action.PUSH, _environment())
    assert str(refused.value) == (
        "view@example.com (viewer) may not push images (viewers only read); "
        "allowed (deployers and admins): admin, deployer"
    )
    with pytest.raises(PermissionDeniedError) as refused:
        require(_user(Role.DEPLOYER), Action.MIGRATE_DATABASE)
    assert str(refused.value) == (
        "dev@example.com (deployer) may not migrate the database; allowed (admins only): admin"
    )
    with pytest.raises(PermissionDeniedError, match=r"^migrate the database needs a token"):
        require(None, Action.MIGRATE_DATABASE)


def test_token_file_is_written_private_and_refused_when_others_can_read_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ORCHESTRATOR_TOKEN", raising=False)
    secret = tokens.generate().secret
    path = write_token_file(secret, folder=tmp_path / "state")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    found = find_token(folder=tmp_path / "state")
    assert found is not None and (found.secret, found.source) == (secret, str(path))
    monkeypatch.setenv("ORCHESTRATOR_TOKEN", "atc_from_env")
    assert find_token(folder=tmp_path / "state").source == "ORCHESTRATOR_TOKEN"  # type: ignore[union-attr]
    assert find_token("atc_flag", folder=tmp_path / "state").source == "--token"  # type: ignore[union-attr]
    monkeypatch.delenv("ORCHESTRATOR_TOKEN")
    os.chmod(path, 0o644)
    with pytest.raises(OrchestratorError, match="can be read by others") as refused:
        find_token(folder=tmp_path / "state")
    assert secret not in str(refused.value)


def test_the_cli_spells_roles_and_request_states_as_the_store_does() -> None:
    """The CLI lists them literally so `--help` imports no SQLAlchemy; they must not drift apart."""
    from orchestrator.cli import access, users
    from orchestrator.store import identity as store

    assert users.ROLES == access.ROLES == tuple(r.value for r in Role)
    assert access.STATUSES == (store.PENDING, store.APPROVED, store.DENIED)
