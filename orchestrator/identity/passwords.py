"""Password hashing with argon2id (argon2-cffi): the clear text is hashed and forgotten, never logged.

argon2 is slow and memory-hard on purpose: a password is low-entropy and a stolen hash must be expensive to
guess against. The encoded hash carries its own parameters and salt, so raising the cost later only needs
`needs_rehash` at the next successful login.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from orchestrator.errors import ConfigError

MIN_LENGTH = 8
NO_PASSWORD = ""  # users.password_hash of a user who signs in with tokens only (the column is NOT NULL)

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    """The argon2id hash of `password`; too short a password is refused (exit 2) before hashing."""
    if len(password) < MIN_LENGTH:
        raise ConfigError(f"a password needs at least {MIN_LENGTH} characters", key="password")
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether `password` matches; False for a user without a password or a hash argon2 cannot read."""
    if not password_hash or not password:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with weaker parameters than today's (rehash it after a good login)."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True
