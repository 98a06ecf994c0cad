"""Users, access requests and API tokens in the store, as small typed functions taking a Session.

Like `repository.py` they flush and never commit; the caller owns the transaction. Nothing here sees a clear
password or token: callers pass hashes in, and look tokens up by hash.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime

from sqlalchemy import String, cast, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from orchestrator.errors import ConfigError, OrchestratorError
from orchestrator.store.models import AccessRequest, ApiToken, Role, User, utcnow

ACTIVE = "active"
DISABLED = "disabled"
PENDING = "pending"
APPROVED = "approved"
DENIED = "denied"

# Deliberately loose (one @, a dot in the domain, no spaces): the mail server is the real judge; this only
# catches typos such as a missing @ or a pasted name.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
_MIN_ID_PREFIX = 4


class AccessRequestError(OrchestratorError):
    """An access request that cannot be reviewed (already reviewed, or not found)."""


class UserNotFoundError(OrchestratorError):
    """No user with that email."""


class TokenNotFoundError(OrchestratorError):
    """No token with that id or prefix."""


def normalize_email(email: str) -> str:
    """The email lower-cased and trimmed; an invalid one is bad usage (exit 2) naming it."""
    cleaned = email.strip().lower()
    if len(cleaned) > 255 or not _EMAIL.fullmatch(cleaned):
        raise ConfigError(f"{email!r} is not an email address", key="email")
    return cleaned


def parse_role(role: str) -> Role:
    try:
        return Role(role.strip().lower())
    except ValueError:
        known = ", ".join(r.value for r in Role)
        raise ConfigError(f"unknown role {role!r}; known roles: {known}", key="role") from None


# --- users ------------------------------------------------------------------------------------------------


def has_users(session: Session) -> bool:
    return session.scalars(select(User.id).limit(1)).first() is not None


def find_user(session: Session, email: str) -> User | None:
    return session.scalars(select(User).where(User.email == normalize_email(email))).one_or_none()


def get_user(session: Session, email: str) -> User:
    user = find_user(session, email)
    if user is None:
        raise UserNotFoundError(f"no user {normalize_email(email)}")
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.email)))


def create_user(
    session: Session,
    email: str,
    role: Role | str,
    *,
    password_hash: str = "",
    now: datetime | None = None,
) -> User:
    """A new active user; a taken email is bad usage (exit 2), settled by the unique index, not a read."""
    address = normalize_email(email)
    moment = now or utcnow()
    user = User(
        email=address,
        role=parse_role(role).value,
        status=ACTIVE,
        password_hash=password_hash,
        created_at=moment,
        updated_at=moment,
    )
    try:
        with session.begin_nested():
            session.add(user)
    except IntegrityError:
        raise ConfigError(f"a user with email {address} already exists", key="email") from None
    return user


def set_role(session: Session, user: User, role: Role | str) -> None:
    user.role = parse_role(role).value
    session.flush()


def set_status(session: Session, user: User, status: str) -> None:
    user.status = status
    session.flush()


def set_password_hash(session: Session, user: User, password_hash: str) -> None:
    user.password_hash = password_hash
    session.flush()


# --- access requests --------------------------------------------------------------------------------------


def create_access_request(
    session: Session,
    *,
    email: str,
    full_name: str,
    organization: str | None = None,
    reason: str | None = None,
    now: datetime | None = None,
) -> AccessRequest:
    """A pending request; one pending request per email (a unique partial index decides races)."""
    address = normalize_email(email)
    if not full_name.strip():
        raise ConfigError("a name is needed", key="--name")
    if find_user(session, address) is not None:
        raise ConfigError(f"{address} already has an account; no access request is needed", key="email")
    request = AccessRequest(
        email=address,
        full_name=full_name.strip(),
        organization=organization,
        reason=reason,
        status=PENDING,
        created_at=now or utcnow(),
    )
    try:
        with session.begin_nested():
            session.add(request)
    except IntegrityError:
        raise ConfigError(f"{address} already has a pending access request", key="email") from None
    return request


def list_access_requests(session: Session, status: str | None = None) -> list[AccessRequest]:
    query = select(AccessRequest).order_by(AccessRequest.created_at, AccessRequest.id)
    if status is not None:
        query = query.where(AccessRequest.status == status)
    return list(session.scalars(query))


def get_access_request(session: Session, ref: str, *, lock: bool = False) -> AccessRequest:
    """The request with this id or id prefix (4+ hex digits), locked for update when reviewing it."""
    digits = ref.strip().lower().replace("-", "")
    if len(digits) < _MIN_ID_PREFIX or any(c not in "0123456789abcdef" for c in digits):
        raise ConfigError(f"{ref!r} is not an access request id; give the id or its first 4+ hex digits")
    hex_id = func.replace(cast(AccessRequest.id, String), "-", "")
    query = select(AccessRequest).where(hex_id.like(f"{digits}%")).limit(2)
    matches = list(session.scalars(query))
    if not matches:
        raise AccessRequestError(f"no access request id starts with {ref!r}")
    if len(matches) > 1:
        raise AccessRequestError(f"{ref!r} matches several access requests; give more digits")
    if not lock:
        return matches[0]
    # Re-read under a row lock (Postgres; SQLite's BEGIN IMMEDIATE already serialises writers), so two
    # admins approving at once cannot both see it pending.
    locked = select(AccessRequest).where(AccessRequest.id == matches[0].id).with_for_update()
    return session.scalars(locked.execution_options(populate_existing=True)).one()


def review_access_request(
    session: Session,
    request: AccessRequest,
    *,
    approve: bool,
    reviewer_id: uuid.UUID | None,
    role: Role | str | None = None,
    note: str | None = None,
    now: datetime | None = None,
) -> User | None:
    """Approve (the user is created, active, with `role`) or deny a pending request; records who and when.

    A request already reviewed is refused (exit 1) and nothing changes.
    """
    if request.status != PENDING:
        when = request.reviewed_at.isoformat() if request.reviewed_at else "earlier"
        raise AccessRequestError(
            f"access request {request.id} from {request.email} was already {request.status} ({when}); "
            "nothing changed"
        )
    moment = now or utcnow()
    user = None
    if approve:
        if role is None:
            raise ConfigError("approving needs a role", key="--role")
        user = create_user(session, request.email, role, now=moment)
    request.status = APPROVED if approve else DENIED
    request.reviewed_by = reviewer_id
    request.reviewed_at = moment
    request.review_note = note
    session.flush()
    return user


# --- tokens -----------------------------------------------------------------------------------------------


def add_token(
    session: Session,
    user: User,
    *,
    name: str,
    token_hash: str,
    prefix: str,
    expires_at: datetime | None,
    now: datetime | None = None,
) -> ApiToken:
    token = ApiToken(
        user_id=user.id,
        name=name,
        token_hash=token_hash,
        prefix=prefix,
        expires_at=expires_at,
        created_at=now or utcnow(),
    )
    session.add(token)
    session.flush()
    return token


def find_token_by_hash(session: Session, token_hash: str) -> ApiToken | None:
    return session.scalars(select(ApiToken).where(ApiToken.token_hash == token_hash)).one_or_none()


def list_tokens(session: Session, user: User | None = None) -> list[ApiToken]:
    """One user's tokens, or everyone's (user=None), newest first."""
    query = select(ApiToken).order_by(ApiToken.created_at.desc(), ApiToken.id)
    if user is not None:
        query = query.where(ApiToken.user_id == user.id)
    return list(session.scalars(query))


def get_token(session: Session, ref: str) -> ApiToken:
    """A token by its display prefix (`atc_ab12cd34`, as `tokens list` shows it) or its id (or 4+ digits)."""
    text = ref.strip().rstrip("…")
    if text.startswith("atc_"):
        matches = list(session.scalars(select(ApiToken).where(ApiToken.prefix == text[:12]).limit(2)))
    else:
        digits = text.lower().replace("-", "")
        if len(digits) < _MIN_ID_PREFIX or any(c not in "0123456789abcdef" for c in digits):
            raise ConfigError(f"{ref!r} is not a token prefix (atc_…) or id")
        hex_id = func.replace(cast(ApiToken.id, String), "-", "")
        matches = list(session.scalars(select(ApiToken).where(hex_id.like(f"{digits}%")).limit(2)))
    if not matches:
        raise TokenNotFoundError(f"no token {ref}")
    if len(matches) > 1:
        raise TokenNotFoundError(f"{ref!r} matches several tokens; give its id")
    return matches[0]


def revoke_token(session: Session, token: ApiToken, *, now: datetime | None = None) -> bool:
    """Revoke the token; False when it already was (its first revocation time is kept)."""
    if token.revoked_at is not None:
        return False
    token.revoked_at = now or utcnow()
    session.flush()
    return True


def touch_token(session: Session, token: ApiToken, *, now: datetime | None = None) -> None:
    """Record the token's use: one UPDATE of one column, the object kept in step without a second write."""
    moment = now or utcnow()
    session.execute(
        update(ApiToken)
        .where(ApiToken.id == token.id)
        .values(last_used_at=moment)
        .execution_options(synchronize_session=False)
    )
    set_committed_value(token, "last_used_at", moment)
