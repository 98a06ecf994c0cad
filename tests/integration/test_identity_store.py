"""Users, access requests and tokens in the store, and a token made a principal: SQLite and Postgres."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from orchestrator.errors import ConfigError
from orchestrator.identity import passwords, tokens
from orchestrator.identity.principal import BOOTSTRAP, FoundToken, authenticate, resolve
from orchestrator.identity.tokens import InvalidTokenError
from orchestrator.store import db
from orchestrator.store import identity as store
from orchestrator.store.models import AccessRequest, ApiToken, Role, User

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def engine(each_backend_url: str) -> Iterator[Engine]:
    db.upgrade(each_backend_url)
    engine = db.make_engine(each_backend_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return db.session_factory(engine)


def _issue(session: Session, user: User, *, expires_at: datetime | None = None) -> str:
    new = tokens.generate()
    store.add_token(
        session, user, name="ci", token_hash=new.token_hash, prefix=new.prefix, expires_at=expires_at, now=T0
    )
    return new.secret


def test_users_are_unique_by_normalised_email_and_emails_are_checked(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        assert not store.has_users(session)
        user = store.create_user(session, " Ada@Example.com ", "admin", password_hash="", now=T0)
        assert (user.email, user.role, user.status) == ("ada@example.com", "admin", "active")
    with sessions.begin() as session:
        assert store.has_users(session)
        with pytest.raises(ConfigError, match=r"a user with email ada@example.com already exists"):
            store.create_user(session, "ADA@example.com", "viewer")
        with pytest.raises(ConfigError, match="'not-an-email' is not an email address"):
            store.create_user(session, "not-an-email", "viewer")
        with pytest.raises(ConfigError, match="unknown role 'owner'; known roles: admin, deployer, viewer"):
            store.create_user(session, "bob@example.com", "owner")
    with sessions() as session:
        assert [u.email for u in store.list_users(session)] == ["ada@example.com"]


def test_access_request_approved_once_creates_the_user(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        admin = store.create_user(session, "admin@example.com", Role.ADMIN)
        request = store.create_access_request(
            session,
            email="dev@example.com",
            full_name="Dev One",
            organization="Acme",
            reason="on call",
            now=T0,
        )
        with pytest.raises(ConfigError, match=r"dev@example.com already has a pending access request"):
            store.create_access_request(session, email="DEV@example.com", full_name="Dev Again")
        with pytest.raises(ConfigError, match=r"admin@example.com already has an account"):
            store.create_access_request(session, email="admin@example.com", full_name="Admin")
    with sessions.begin() as session:
        pending = store.get_access_request(session, str(request.id)[:8], lock=True)
        user = store.review_access_request(
            session, pending, approve=True, role="deployer", reviewer_id=admin.id, now=T0 + timedelta(1)
        )
        assert user is not None
    with sessions() as session:
        row = session.get(AccessRequest, request.id)
        assert row is not None
        assert (row.status, row.reviewed_by, row.reviewed_at) == ("approved", admin.id, T0 + timedelta(1))
        created = store.get_user(session, "dev@example.com")
        assert (created.role, created.status) == ("deployer", "active")
        assert [r.email for r in store.list_access_requests(session, "pending")] == []
    with sessions.begin() as session, pytest.raises(store.AccessRequestError, match="already approved"):
        again = store.get_access_request(session, str(request.id), lock=True)
        store.review_access_request(session, again, approve=True, role="admin", reviewer_id=admin.id)
    with sessions() as session:
        assert store.get_user(session, "dev@example.com").role == "deployer"
        assert session.get(AccessRequest, request.id).reviewed_at == T0 + timedelta(1)  # type: ignore[union-attr]


def test_a_denied_request_keeps_the_note_and_allows_a_new_request(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        request = store.create_access_request(session, email="eve@example.com", full_name="Eve")
        store.review_access_request(session, request, approve=False, reviewer_id=None, note="unknown person")
        assert store.find_user(session, "eve@example.com") is None
        second = store.create_access_request(session, email="eve@example.com", full_name="Eve")
    with sessions() as session:
        statuses = {r.id: (r.status, r.review_note) for r in store.list_access_requests(session)}
        assert statuses == {request.id: ("denied", "unknown person"), second.id: ("pending", None)}


def test_two_requests_for_one_email_at_once_leave_one_pending(sessions: sessionmaker[Session]) -> None:
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def ask() -> None:
        barrier.wait()
        try:
            with sessions.begin() as session:
                store.create_access_request(session, email="race@example.com", full_name="Race")
            outcomes.append("created")
        except ConfigError as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=ask) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["created", "email: race@example.com already has a pending access request"]


def test_a_token_authenticates_its_user_and_records_its_use(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        user = store.create_user(session, "dev@example.com", Role.DEPLOYER)
        secret = _issue(session, user)
    with sessions.begin() as session:
        principal = authenticate(session, FoundToken(secret, "--token"), now=T0 + timedelta(hours=1))
        assert (principal.email, principal.role, principal.user_id) == (
            "dev@example.com",
            Role.DEPLOYER,
            user.id,
        )
        assert principal.token_prefix == secret[:12]
    with sessions() as session:
        row = session.scalars(select(ApiToken)).one()
        assert row.last_used_at == T0 + timedelta(hours=1)
        assert row.token_hash == tokens.hash_token(secret) and secret not in (row.token_hash + row.prefix)


def test_tokens_that_do_not_let_anyone_in(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        user = store.create_user(session, "dev@example.com", Role.DEPLOYER)
        expired = _issue(session, user, expires_at=T0 + timedelta(days=1))
        revoked = _issue(session, user)
        store.revoke_token(session, store.get_token(session, revoked[:12]), now=T0)
        other = store.create_user(session, "gone@example.com", Role.DEPLOYER)
        disabled = _issue(session, other)
        store.set_status(session, other, store.DISABLED)
    unknown = tokens.generate().secret
    cases = {
        expired: f"token {expired[:12]}… (from --token) is expired",
        revoked: f"token {revoked[:12]}… (from --token) is revoked",
        disabled: f"token {disabled[:12]}… (from --token) belongs to gone@example.com, who is disabled",
        unknown: f"token {unknown[:12]}… (from --token) is unknown to this database",
        "atc_" + "x" * 10: "token given (from --token) is malformed",
    }
    for secret, message in cases.items():
        with sessions() as session, pytest.raises(InvalidTokenError) as refused:
            authenticate(session, FoundToken(secret, "--token"), now=T0 + timedelta(days=2))
        assert str(refused.value).startswith(message)
        assert secret not in str(refused.value)


def test_resolve_bootstraps_only_an_empty_database(sessions: sessionmaker[Session], tmp_path: object) -> None:
    folder = tmp_path / "state"  # type: ignore[operator]
    with sessions() as session:
        assert resolve(session, folder=folder) is BOOTSTRAP
    with sessions.begin() as session:
        store.create_user(
            session, "admin@example.com", Role.ADMIN, password_hash=passwords.hash_password("p4ssw0rd!")
        )
    with sessions() as session:
        assert resolve(session, folder=folder) is None
