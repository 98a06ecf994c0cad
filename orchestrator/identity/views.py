"""Users, tokens and access requests as JSON-ready dicts (`-o json`, later the REST API).

No hash or secret is ever part of a view: a password hash, a token hash, or a token.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from orchestrator.identity import tokens
from orchestrator.store.models import AccessRequest, ApiToken, User
from orchestrator.store.views import iso_time

if TYPE_CHECKING:
    from orchestrator.identity.principal import Principal


def principal_view(principal: Principal) -> dict[str, Any]:
    """Who acts (`whoami -o json`, `GET /api/v1/whoami`)."""
    return {
        "email": principal.email,
        "role": principal.role.value,
        "user_id": str(principal.user_id) if principal.user_id else None,
        "token": tokens.display(principal.token_prefix) if principal.token_prefix else None,
        "bootstrap": principal.bootstrap,
    }


def user_view(user: User) -> dict[str, Any]:
    return {
        "id": str(user.id),
        "email": user.email,
        "role": user.role,
        "status": user.status,
        "has_password": bool(user.password_hash),
        "created_at": iso_time(user.created_at),
        "updated_at": iso_time(user.updated_at),
    }


def token_state(token: ApiToken, now: datetime) -> str:
    if token.revoked_at is not None:
        return "revoked"
    if token.expires_at is not None and token.expires_at <= now:
        return "expired"
    return "active"


def token_view(token: ApiToken, now: datetime) -> dict[str, Any]:
    return {
        "id": str(token.id),
        "prefix": tokens.display(token.prefix),
        "name": token.name,
        "user": token.user.email,
        "state": token_state(token, now),
        "created_at": iso_time(token.created_at),
        "last_used_at": iso_time(token.last_used_at),
        "expires_at": iso_time(token.expires_at),
        "revoked_at": iso_time(token.revoked_at),
    }


def access_request_view(request: AccessRequest) -> dict[str, Any]:
    return {
        "id": str(request.id),
        "email": request.email,
        "full_name": request.full_name,
        "organization": request.organization,
        "reason": request.reason,
        "status": request.status,
        "reviewed_by": request.reviewer.email if request.reviewer is not None else None,
        "reviewed_at": iso_time(request.reviewed_at),
        "review_note": request.review_note,
        "created_at": iso_time(request.created_at),
    }
