"""Who calls the API: a bearer token (`Authorization: Bearer atc_…`), on every route but asking for access.

The token is checked by `identity.principal.authenticate` — what `principal.resolve(session, explicit)` does
with an explicit token — and never through the rest of `resolve`: the server's own `ORCHESTRATOR_TOKEN`, its
token file and the bootstrap login (a database without users) speak for whoever runs the server, not for a
caller over the network. No token, or one that is unknown, malformed, expired, revoked or whose user is
disabled, is 401; what the principal may do is decided by `identity.rules.require` (403).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from orchestrator.identity.principal import FoundToken, Principal, authenticate
from orchestrator.identity.rules import NotSignedInError

AUTHORIZATION = "the Authorization header"

# auto_error=False: a missing or non-bearer header is answered by us, as problem details.
_bearer = HTTPBearer(auto_error=False, description="an API token: `orchestrator tokens create`")


def principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    """The caller, authenticated by their bearer token (401 without a valid one)."""
    if credentials is None or not credentials.credentials.strip():
        raise NotSignedInError(
            "this API needs a token: send `Authorization: Bearer <token>` "
            "(make one with `orchestrator tokens create`)"
        )
    with request.app.state.sessions.begin() as session:
        return authenticate(session, FoundToken(credentials.credentials.strip(), AUTHORIZATION))


Caller = Annotated[Principal, Depends(principal)]
