"""Who is acting: the one place a token is found and turned into a principal (the CLI and the REST API).

A token comes from `--token`, else `$ORCHESTRATOR_TOKEN`, else the file `orchestrator login` writes:
`<state folder>/token`, mode 0600. The state folder is where the embedded database lives, so a token sits
next to the database that issued it, and two checkouts with two databases do not overwrite each other's
login. A token file that others can read is refused, as ssh refuses such a key.

A database with no users yet has nobody to authenticate: the CLI then acts as the local login with the
admin role (`BOOTSTRAP`), which ends when the first user is created.
"""

from __future__ import annotations

import getpass
import os
import stat
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session

from orchestrator.errors import OrchestratorError
from orchestrator.identity import tokens
from orchestrator.identity.tokens import InvalidTokenError
from orchestrator.logs import get_logger
from orchestrator.settings import state_dir
from orchestrator.store import identity as store
from orchestrator.store.models import Role, utcnow

log = get_logger(__name__)

TOKEN_ENV = tokens.TOKEN_ENV
TOKEN_FILE_NAME = "token"


@dataclass(frozen=True)
class Principal:
    """The user a command acts for (or the bootstrap local login, which has no user row)."""

    email: str
    role: Role
    user_id: uuid.UUID | None = None
    token_prefix: str | None = None
    bootstrap: bool = False

    def audit_name(self, claimed: str | None = None) -> str:
        """The name the audit trail records: the user's email; only the bootstrap login may name itself
        (`--actor`), else it is the operating-system user, as before there were users."""
        if not self.bootstrap:
            return self.email
        if claimed:
            return claimed
        try:
            return getpass.getuser()
        except (KeyError, OSError):
            return self.email


BOOTSTRAP = Principal(email="local", role=Role.ADMIN, bootstrap=True)


def webhook_principal(source: str) -> Principal:
    """Who a verified webhook acts as where the rules are asked (a GitHub release's promotion): a deployer
    named after its source, `github`. Its signature, made with a secret only the server was given, is its
    credential; an environment's `deployers` decides whether it may (`deployer` or `github` listed) and its
    approval policy and freeze windows hold it as anyone else."""
    return Principal(email=source, role=Role.DEPLOYER)


@dataclass(frozen=True)
class FoundToken:
    secret: str
    source: str  # where it came from, for messages: --token, ORCHESTRATOR_TOKEN, or the file's path


def token_file(folder: Path | None = None) -> Path:
    return (folder or state_dir()) / TOKEN_FILE_NAME


def find_token(explicit: str | None = None, *, folder: Path | None = None) -> FoundToken | None:
    """The token to act with: `--token`, else the environment variable, else the login file."""
    if explicit:
        return FoundToken(explicit.strip(), "--token")
    from_env = os.environ.get(TOKEN_ENV, "").strip()
    if from_env:
        return FoundToken(from_env, TOKEN_ENV)
    path = token_file(folder)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise OrchestratorError(f"cannot read the token file {path}: {exc.strerror or exc}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise OrchestratorError(
            f"the token file {path} can be read by others (mode {stat.S_IMODE(mode):04o}); "
            f"run `chmod 600 {path}` or `orchestrator login` again"
        )
    secret = path.read_text().strip()
    return FoundToken(secret, str(path)) if secret else None


def write_token_file(secret: str, *, folder: Path | None = None) -> Path:
    """Save the token for later commands: created 0600 from the start (never briefly world-readable)."""
    path = token_file(folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secret + "\n")
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def authenticate(session: Session, found: FoundToken, *, now: datetime | None = None) -> Principal:
    """The principal a token stands for, recording its use; InvalidTokenError (exit 1) names the token by
    its prefix only: unknown, malformed, expired, revoked, or its user disabled."""
    moment = now or utcnow()
    name = f"token {tokens.display_of(found.secret)} (from {found.source})"
    if not tokens.is_well_formed(found.secret):
        raise InvalidTokenError(f"{name} is malformed: a token is atc_ and 43 url-safe characters")
    token = store.find_token_by_hash(session, tokens.hash_token(found.secret))
    if token is None:
        raise InvalidTokenError(f"{name} is unknown to this database")
    if token.revoked_at is not None:
        raise InvalidTokenError(f"{name} is revoked (since {token.revoked_at.isoformat()})")
    if token.expires_at is not None and token.expires_at <= moment:
        raise InvalidTokenError(f"{name} is expired (since {token.expires_at.isoformat()})")
    user = token.user
    if user.status != store.ACTIVE:
        raise InvalidTokenError(f"{name} belongs to {user.email}, who is {user.status}")
    store.touch_token(session, token, now=moment)
    # The prefix only: the key must not say "token", or the log's redaction would hide even that.
    log.debug("authenticated", user=user.email, role=user.role, prefix=token.prefix, source=found.source)
    return Principal(email=user.email, role=Role(user.role), user_id=user.id, token_prefix=token.prefix)


def resolve(
    session: Session, explicit: str | None = None, *, folder: Path | None = None, now: datetime | None = None
) -> Principal | None:
    """Who is acting: the token's user; BOOTSTRAP on a database without users; None when users exist and
    no token was given (reading is still possible; changing anything is refused by the rules)."""
    found = find_token(explicit, folder=folder)
    if found is not None:
        return authenticate(session, found, now=now)
    if not store.has_users(session):
        return BOOTSTRAP
    return None
