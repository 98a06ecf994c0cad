"""`POST /api/v1/services/{service}/builds`: record what `orchestrator build --push` pushed.

The build runs where docker is (CI); with `--server`, what it pushed is recorded here, in the server's
database, rather than in a database of the machine that built it. A deploy of that commit through the
server (`POST /deployments` at the checkout's HEAD, a push or a workflow run) then rolls out exactly that
digest, as `deploy` does after a local `build --push`. Recording needs the role that may push (deployers,
admins); the releases' `created_by` is the caller.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request

from orchestrator.build.releases import record_built
from orchestrator.identity.rules import Action, require
from orchestrator.logs import get_logger
from orchestrator.server.api import schemas
from orchestrator.server.api.auth import Caller

log = get_logger(__name__)
router = APIRouter(tags=["releases"])

Service = Annotated[str, Path(min_length=1, max_length=253, pattern=r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$")]


@router.post("/services/{service}/builds", status_code=201, response_model=schemas.RecordedBuild)
def record_build(request: Request, caller: Caller, service: Service, body: schemas.RecordBuildBody) -> Any:
    """Record the image a build of the service pushed (by digest, to each repository named): the releases
    a deploy of that commit rolls out (deployers and admins)."""
    require(caller, Action.PUSH)
    request.app.state.rollouts.project().pipeline(service)  # an unknown service is bad usage (422)
    with request.app.state.sessions.begin() as session:
        ids = record_built(
            session,
            service=service,
            commit=body.commit,
            digest=body.digest,
            image_names=body.images,
            actor=caller.audit_name(),
        )
    log.info("build recorded", service=service, commit=body.commit, digest=body.digest, by=caller.email)
    return {"service": service, "commit": body.commit, "digest": body.digest, "releases": ids}
