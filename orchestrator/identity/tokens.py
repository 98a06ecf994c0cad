"""API tokens: `atc_` and 32 random bytes, url-safe. Only a SHA-256 of the token and a prefix are kept.

A plain SHA-256 is enough here (unlike passwords): the token is 256 random bits, so no guessing or
dictionary attack against its hash is possible, and a fast hash lets every request find its token by an
indexed lookup of the hash instead of trying a slow hash against each row.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from orchestrator.errors import ConfigError, OrchestratorError

TOKEN_ENV = "ORCHESTRATOR_TOKEN"  # where a token may come from, after --token (see principal.py)
TOKEN_PREFIX = "atc_"
RANDOM_BYTES = 32
# `atc_` + 8 characters of the random part: 48 bits, enough to tell tokens apart, useless for guessing the
# remaining 208. It fits api_tokens.prefix (16 characters).
DISPLAY_LENGTH = len(TOKEN_PREFIX) + 8
_SHAPE = re.compile(rf"^{TOKEN_PREFIX}[A-Za-z0-9_-]{{43}}$")  # 32 bytes are 43 url-safe base64 characters
_EXPIRY = re.compile(r"^(\d+)([hdw])$")
_EXPIRY_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


class InvalidTokenError(OrchestratorError):
    """A token that does not let anyone in: unknown, malformed, expired, revoked, or its user disabled.

    The message names the token by its display prefix only.
    """


@dataclass(frozen=True)
class NewToken:
    """A token just made: the secret (shown once, never stored) and what is stored about it."""

    secret: str
    token_hash: str
    prefix: str


def generate() -> NewToken:
    secret = TOKEN_PREFIX + secrets.token_urlsafe(RANDOM_BYTES)
    return NewToken(secret=secret, token_hash=hash_token(secret), prefix=secret[:DISPLAY_LENGTH])


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def is_well_formed(secret: str) -> bool:
    return _SHAPE.fullmatch(secret) is not None


def display(prefix: str) -> str:
    """How messages name a token: its prefix and an ellipsis, never more."""
    return f"{prefix}…"


def display_of(secret: str) -> str:
    """The display form of a token someone gave us; nothing of a string that is not shaped like a token
    (a mistyped token or a pasted password would otherwise be shown in part)."""
    if is_well_formed(secret):
        return display(secret[:DISPLAY_LENGTH])
    return "given"


def parse_expiry(value: str, now: datetime) -> datetime | None:
    """`30d`, `12h`, `2w` from now, or None for `never`; anything else is bad usage (exit 2)."""
    text = value.strip().lower()
    if text == "never":
        return None
    span = parse_span(text)
    if span is None:
        raise ConfigError(
            f"{value!r} is not an expiry; use a number of hours, days or weeks (12h, 30d, 2w) or never",
            key="--expires",
        )
    return now + span


def parse_span(value: str) -> timedelta | None:
    """`12h`, `30d`, `2w` as a timedelta (more than zero); None when `value` is not one."""
    match = _EXPIRY.fullmatch(value.strip().lower())
    if match is None or int(match.group(1)) == 0:
        return None
    return int(match.group(1)) * _EXPIRY_UNITS[match.group(2)]
