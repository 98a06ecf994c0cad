"""The dashboard's session: an API token in an HttpOnly cookie.

Signing in (`identity.signin.sign_in`, argon2 as for `orchestrator login`) makes a token named `dashboard`
that expires after SESSION_LIFETIME; the cookie holds its secret. Every request authenticates it with
`identity.principal.authenticate`, exactly as the REST API authenticates a bearer token, so an expired,
revoked or disabled user's session stops at once, `tokens list` shows browser sessions, and an admin can
revoke one. Signing out revokes the token. No session table, no server-side key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from fastapi import Request, Response

from orchestrator.errors import OrchestratorError
from orchestrator.identity.principal import FoundToken, Principal, authenticate
from orchestrator.identity.signin import SignedIn, sign_in
from orchestrator.identity.tokens import hash_token
from orchestrator.store import identity as store
from orchestrator.store.models import utcnow

COOKIE = "orchestrator_session"
TOKEN_NAME = "dashboard"
SESSION_LIFETIME = timedelta(hours=12)
_SOURCE = "the dashboard's session cookie"


@dataclass(frozen=True)
class Session:
    """The signed-in principal and their session's secret (the CSRF token is derived from it)."""

    principal: Principal
    secret: str


def is_secure(request: Request) -> bool:
    """Whether the browser reached us over TLS (`serve --tls-cert`), so cookies are marked Secure."""
    return request.url.scheme == "https"


def current(request: Request) -> Session | None:
    """The session the request's cookie stands for; None without one, or when its token no longer
    authenticates (expired, revoked, the user disabled)."""
    secret = request.cookies.get(COOKIE)
    if not secret:
        return None
    try:
        with request.app.state.sessions.begin() as db:
            principal = authenticate(db, FoundToken(secret, _SOURCE))
    except OrchestratorError:
        return None
    return Session(principal, secret)


def open_session(request: Request, response: Response, email: str, password: str) -> SignedIn:
    """Check the password and set the session cookie; LoginFailedError when it is wrong."""
    now = utcnow()
    with request.app.state.sessions.begin() as db:
        signed_in = sign_in(
            db, email, password, token_name=TOKEN_NAME, expires_at=now + SESSION_LIFETIME, now=now
        )
    response.set_cookie(
        COOKIE,
        signed_in.token.secret,
        max_age=int(SESSION_LIFETIME.total_seconds()),
        httponly=True,
        secure=is_secure(request),
        samesite="lax",  # Lax: a link from elsewhere opens the dashboard signed in; a cross-site POST
        path="/",  # carries no cookie (and would still lack the CSRF token)
    )
    return signed_in


def close_session(request: Request, response: Response) -> None:
    """Revoke the session's token (so a copied cookie is worthless) and drop the cookie."""
    secret = request.cookies.get(COOKIE)
    if secret:
        with request.app.state.sessions.begin() as db:
            token = store.find_token_by_hash(db, hash_token(secret))
            if token is not None:
                store.revoke_token(db, token)
    response.delete_cookie(COOKIE, path="/", secure=is_secure(request), httponly=True, samesite="lax")
