"""The REST API's bodies as pydantic models: what FastAPI validates and what the OpenAPI document says.

Responses are the store's and identity's views (`store/views.py`, `identity/views.py`) — the same JSON as
`-o json` — validated against these models on the way out, so the document cannot promise a shape the
server does not send. Requests refuse unknown keys, as the configuration files do.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

PhaseName = Literal[
    "Pending",
    "AwaitingApproval",
    "AwaitingMerge",
    "Progressing",
    "Paused",
    "Succeeded",
    "Aborted",
    "RolledBack",
    "Failed",
]
RoleName = Literal["admin", "deployer", "viewer"]


OVERRIDE = "go ahead inside a freeze window of the environment (admins): the reason, which is recorded"


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- responses --------------------------------------------------------------------------------------------


class _View(BaseModel):
    # A key a view gains later reaches clients as it reaches `-o json`, before this model names it.
    model_config = ConfigDict(extra="allow")


class Release(_View):
    id: str
    service: str
    git_commit: str
    image_repository: str
    image: str
    image_digest: str | None
    manifest_hash: str
    values_hash: str | None
    created_at: str | None
    created_by: str | None


class Cluster(_View):
    cluster: str
    cloud: str
    region: str
    wave: int | None
    phase: str
    canary_weight: int
    stable_weight: int
    message: str | None
    updated_at: str | None


class Deployment(_View):
    id: str
    name: str | None
    service: str
    environment: str
    phase: PhaseName
    status: str
    strategy: str
    kind: str
    undoes: str | None
    gitops_commit: str | None
    current_step: int
    cloud_provider: str | None
    region: str | None
    actor: str | None
    user_id: str | None
    reason: str | None
    message: str | None
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    release: Release
    clusters: list[Cluster] = Field(default_factory=list)


class Event(_View):
    deployment_id: str
    seq: int
    type: str
    step: int | None
    cluster: str | None
    message: str
    data: dict[str, Any] | None
    actor: str | None
    created_at: str | None


class Step(BaseModel):
    index: int
    wave: int = Field(description="-1: every cluster (the final promotion)")
    clusters: list[str]
    label: str
    state: Literal["done", "current", "pending"]


class DeploymentDetail(Deployment):
    driver: str | None = Field(description="the process driving the deployment now (a live lease), if any")
    steps: list[Step]
    events: list[Event]
    measurements: list[Event] = Field(description="the gates' measurements: the events of type measurement")


class HistoryEntry(Deployment):
    events: list[Event]


class Created(BaseModel):
    """A deployment a promotion or rollback recorded, and what the command line says of it."""

    lines: list[str]
    deployment: Deployment


class ReleaseStep(_View):
    environment: str
    deployment: str
    kind: str


class ReleaseTrail(Release):
    verified_in: list[str]
    trail: list[ReleaseStep]


class ControlOutcome(BaseModel):
    """What a control request did, and the deployment as it stands after it."""

    message: str
    driver: str | None = Field(description="the process driving the deployment now, if one holds it")
    deployment: Deployment


class LiveState(BaseModel):
    model_config = ConfigDict(extra="allow")

    reachable: bool


class StatusCluster(Cluster):
    live: dict[str, Any] | None
    disagreements: list[str]
    touched: bool


class Running(_View):
    deployment: str
    image: str
    git_commit: str
    since: str | None


class Status(Deployment):
    clusters: list[StatusCluster] = Field(default_factory=list)  # type: ignore[assignment]
    running: Running | None
    disagreements: list[str]


class User(_View):
    id: str
    email: str
    role: RoleName
    status: str
    has_password: bool
    created_at: str | None
    updated_at: str | None


class Token(_View):
    id: str
    prefix: str
    name: str
    user: str
    state: Literal["active", "expired", "revoked"]
    created_at: str | None
    last_used_at: str | None
    expires_at: str | None
    revoked_at: str | None


class RevokedToken(Token):
    changed: bool = Field(description="false: the token was already revoked, and stays as it was")


class Whoami(_View):
    email: str
    role: RoleName
    user_id: str | None
    token: str | None = Field(description="the token's prefix, as `tokens list` shows it")
    bootstrap: bool = Field(description="always false here: the local login never acts over the network")


class NewToken(Token):
    secret: str = Field(description="the token itself: shown this once, only its hash is stored")


class AccessRequest(_View):
    id: str
    email: str
    full_name: str
    organization: str | None
    reason: str | None
    status: str
    reviewed_by: str | None
    reviewed_at: str | None
    review_note: str | None
    created_at: str | None


class Problem(BaseModel):
    """RFC 9457 problem details (`application/problem+json`)."""

    type: str
    title: str
    status: int
    detail: str
    exit_code: int | None = Field(None, description="what the command line exits with for this error")
    errors: list[dict[str, str]] | None = None


# --- requests ---------------------------------------------------------------------------------------------


class DeployBody(_Request):
    service: str = Field(min_length=1, max_length=63)
    environment: str = Field(min_length=1, max_length=63)
    image: str | None = Field(None, max_length=512, description="deploy this image instead of the built one")
    set: list[str] = Field(
        default_factory=list, max_length=100, description="template values as KEY=VALUE (highest precedence)"
    )
    strategy: Literal["rolling"] | None = Field(None, description="override the pipeline's strategy")
    override_freeze: str | None = Field(None, min_length=1, max_length=2000, description=OVERRIDE)
    commit: str | None = Field(
        None,
        pattern="^[0-9a-f]{40}$",
        description="deploy this commit (its full SHA; fetched from the checkout's origin when missing) "
        "instead of the server checkout's HEAD",
    )


class PromoteBody(_Request):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    to: str = Field(min_length=1, max_length=63, description="the environment to promote to")
    from_: str | None = Field(
        None,
        alias="from",
        min_length=1,
        max_length=63,
        description="where the release Succeeded (default: the environment before `to` on the path)",
    )
    release: str | None = Field(None, min_length=4, max_length=36, description="the release (id or prefix)")
    override_freeze: str | None = Field(None, min_length=1, max_length=2000, description=OVERRIDE)


class RollbackBody(_Request):
    environment: str = Field(min_length=1, max_length=63)
    to: str | None = Field(
        None, min_length=4, max_length=36, description="the release to go back to (default: the last good)"
    )
    strategy: Literal["canary"] | None = Field(
        None, description="step by step with the pipeline's strategy (default: a fast rolling update)"
    )
    override_freeze: str | None = Field(None, min_length=1, max_length=2000, description=OVERRIDE)


class ApproveBody(_Request):
    full: bool = Field(False, description="skip every remaining step, analyses included, and promote now")
    override_freeze: str | None = Field(None, min_length=1, max_length=2000, description=OVERRIDE)


class RetryBody(_Request):
    override_freeze: str | None = Field(None, min_length=1, max_length=2000, description=OVERRIDE)


ImageName = Annotated[str, Field(min_length=1, max_length=512, pattern=r"^[a-z0-9][a-z0-9._:/-]*$")]


class RecordBuildBody(_Request):
    commit: str = Field(pattern=r"^[0-9a-f]{40}$", description="the commit that was built")
    digest: str = Field(pattern=r"^sha256:[0-9a-f]{64}$", description="the image's digest, one for all")
    images: list[ImageName] = Field(
        min_length=1, max_length=20, description="each repository it was pushed to (host/path, no tag)"
    )


class RecordedBuild(_View):
    service: str
    commit: str
    digest: str
    releases: list[str] = Field(description="the release recorded (or found) for each image repository")


class LoginBody(_Request):
    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=1024)
    expires: str = Field("30d", max_length=20, description="the token's lifetime: 12h, 30d, 2w")


class SignedIn(_View):
    email: str
    role: RoleName
    token: str = Field(description="the new token's prefix, as `tokens list` shows it")
    secret: str = Field(description="the token itself: shown this once, only its hash is stored")


class CreateUserBody(_Request):
    email: str = Field(min_length=3, max_length=255)
    role: RoleName
    password: str | None = Field(
        None,
        min_length=1,
        max_length=1024,
        description="for `orchestrator login` (at least 8 characters); none: they sign in with a token",
    )


class ChangeUserBody(_Request):
    role: RoleName | None = None
    status: Literal["active", "disabled"] | None = None


class AccessRequestBody(_Request):
    email: str = Field(min_length=3, max_length=255)
    full_name: str = Field(min_length=1, max_length=255)
    organization: str | None = Field(None, max_length=255)
    reason: str | None = Field(None, max_length=2000)


class ApproveAccessBody(_Request):
    role: RoleName


class DenyAccessBody(_Request):
    reason: str | None = Field(None, max_length=2000)


class CreateTokenBody(_Request):
    name: str = Field("api", min_length=1, max_length=100)
    expires: str = Field("90d", max_length=20, description="lifetime: 12h, 30d, 2w, or never")
    user: str | None = Field(None, max_length=255, description="for this user (admins); default: you")
