"""Cross-site request forgery: every form and every htmx POST carries a token a forged request cannot know.

A signed double-submit token, ours and small, rather than a library: the session cookie already holds a
256-bit secret that only this browser has (HttpOnly, so page scripts cannot read it either), so the form's
token is derived from it — HMAC-SHA256(session secret, a fixed label) — and checked by deriving it again.
There is no second cookie or server-side key to keep, the token changes with every session and dies with
it, and knowing it reveals nothing of the secret (HMAC is one-way). The libraries looked at
(starlette-csrf, fastapi-csrf-protect) add a second random cookie and a server key for the same check.

Before signing in there is no session: the login form uses a plain double submit, a random value set as a
cookie (SameSite=Strict) and repeated in the form, which a page on another site can neither read nor set.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

FIELD = "csrf_token"  # the form field
HEADER = "X-CSRF-Token"  # what htmx sends (base.html puts it in hx-headers)
LOGIN_COOKIE = "orchestrator_login_csrf"
_LABEL = b"orchestrator dashboard csrf v1"


def for_session(session_secret: str) -> str:
    """The token of the session whose cookie holds `session_secret`."""
    digest = hmac.new(session_secret.encode(), _LABEL, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def session_token_matches(session_secret: str, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(for_session(session_secret), sent or "")


def new_login_token() -> str:
    return secrets.token_urlsafe(32)


def login_token_matches(cookie: str | None, sent: str | None) -> bool:
    return bool(cookie) and bool(sent) and hmac.compare_digest(cookie or "", sent or "")
