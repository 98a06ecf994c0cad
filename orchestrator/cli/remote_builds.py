"""`orchestrator --server URL build SERVICE --push`: build and push here, record the releases on the server.

Without this the releases would go to a database on the building machine, which the server never reads,
and a deploy through the server would roll out the environment's `images:` instead of the digest just
pushed. Who may push is asked of the server for the token (`GET /whoami`, then the same rule as locally)
before anything is built; the releases are recorded with `POST /services/{service}/builds` once every push
and digest check succeeded, as `build --push` records them locally.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestrator.cli.remote import connected
from orchestrator.cli.remote_identity import segment

if TYPE_CHECKING:
    from orchestrator.build.build_once import RecordBuild


def authorize_push(server: str) -> None:
    """Refuse, as the local command does (exit 1, the same message), a token whose role may not push."""
    from orchestrator.identity.principal import Principal
    from orchestrator.identity.rules import Action, require
    from orchestrator.store.models import Role

    with connected(server) as api:
        who = api.call("GET", "/whoami")
    require(Principal(email=who["email"], role=Role(who["role"])), Action.PUSH)


def recorder(server: str) -> RecordBuild:
    """What `build_and_push` calls to record a pushed build: the server's release ids."""

    def record(service: str, commit: str, digest: str, image_names: list[str]) -> list[str]:
        body = {"commit": commit, "digest": digest, "images": image_names}
        with connected(server) as api:
            recorded = api.call("POST", f"/services/{segment(service)}/builds", json=body)
        return list(recorded["releases"])

    return record
