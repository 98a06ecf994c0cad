"""Signing in with an email and a password: the one check `orchestrator login` and the dashboard share.

A good password buys a new API token (the CLI saves it in the token file; the dashboard keeps it in its
session cookie), so a browser session is a token like any other: listed by `tokens list`, revocable, its
use recorded, and checked by `principal.authenticate` on every request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from orchestrator.errors import OrchestratorError
from orchestrator.identity import passwords, tokens
from orchestrator.store import identity as store
from orchestrator.store.models import Role


class LoginFailedError(OrchestratorError):
    """Wrong email or password (which of the two is not said), or a user who may not sign in."""


@dataclass(frozen=True)
class SignedIn:
    email: str
    role: Role
    token: tokens.NewToken


def sign_in(
    session: Session,
    email: str,
    password: str,
    *,
    token_name: str,
    expires_at: datetime | None,
    now: datetime,
) -> SignedIn:
    """A new token for the user whose password this is; LoginFailedError otherwise (never saying whether the
    email or the password was wrong). A hash made with weaker parameters than today's is upgraded."""
    address = store.normalize_email(email)
    user = store.find_user(session, address)
    if user is None or not passwords.verify_password(user.password_hash, password):
        raise LoginFailedError(f"wrong email or password for {address}")
    if user.status != store.ACTIVE:
        raise LoginFailedError(f"{user.email} is {user.status} and cannot sign in")
    if passwords.needs_rehash(user.password_hash):
        store.set_password_hash(session, user, passwords.hash_password(password))
    new = tokens.generate()
    store.add_token(
        session,
        user,
        name=token_name,
        token_hash=new.token_hash,
        prefix=new.prefix,
        expires_at=expires_at,
        now=now,
    )
    return SignedIn(email=user.email, role=Role(user.role), token=new)
