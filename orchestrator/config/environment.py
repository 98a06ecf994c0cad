"""`environments/<env>.yaml`: an environment's clusters, values, waves, approval policy and freeze windows."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from orchestrator.clusters.targets import ClusterTarget
from orchestrator.config.base import ConfigModel, DnsLabel, KeyProblem

Cloud = Literal["aws", "azure", "gcp", "onprem"]


class RegistryConfig(ConfigModel):
    """A registry the environment's clusters pull from; images are pushed to it by digest."""

    type: Literal["generic", "ecr", "acr", "gar"] = "generic"
    host: str = Field(description="registry host and optional path prefix, e.g. ghcr.io/addtocloud")
    region: str | None = Field(default=None, description="ECR: the AWS region")
    create_repository: bool = Field(default=False, description="ECR: create the repository when missing")
    username_env: str | None = Field(default=None, description="variable holding the user name (generic)")
    password_env: str | None = Field(default=None, description="variable holding the password or token")
    insecure: bool = Field(default=False, description="plain HTTP (a local registry)")


class ClusterConfig(ConfigModel):
    name: DnsLabel
    cloud: Cloud
    region: str
    weight: int = Field(ge=0, le=100, description="share of the environment's traffic (cross-cloud route)")
    target: ClusterTarget
    registry: str | None = Field(default=None, description="name of an entry in `registries`")
    values: dict[str, Any] = Field(default_factory=dict)


class ApprovalPolicy(ConfigModel):
    required: bool = Field(
        default=False,
        description="deployments wait in AwaitingApproval, nothing touched, until an approver runs `approve`",
    )
    approvers: list[str] = Field(default_factory=lambda: ["admin"], description="roles or user emails")
    prevent_self_approval: bool = Field(
        default=False,
        description="whoever deployed may not approve their own deployment (four eyes; needs users)",
    )


class FreezeWindow(ConfigModel):
    start: datetime = Field(description="in the window from this moment; without a zone, UTC")
    end: datetime = Field(description="out of it from this moment; after start")
    reason: str = Field(default="", description="named when a deploy is refused")

    @model_validator(mode="after")
    def _ordered(self) -> FreezeWindow:
        if self.end <= self.start:
            raise KeyProblem("a freeze window must end after it starts", "end")
        return self


# Argo CD Notifications' triggers. `on-drift` fires once per new drift that `drift` or `status` finds (the
# check records it in the audit trail: rollout/drift_alerts.py), not on every check.
Trigger = Literal[
    "on-started", "on-awaiting-approval", "on-succeeded", "on-rolled-back", "on-failed", "on-drift"
]
TRIGGERS: tuple[str, ...] = (
    "on-started",
    "on-awaiting-approval",
    "on-succeeded",
    "on-rolled-back",
    "on-failed",
    "on-drift",
)
_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


class NotificationConfig(ConfigModel):
    """A destination told about the environment's rollouts: a Slack-compatible incoming webhook (a Block
    Kit message) or a generic webhook (JSON, signed `X-Signature: sha256=<hex>` when `secretEnv` is set)."""

    name: DnsLabel
    type: Literal["slack", "webhook"]
    url: str | None = Field(default=None, description="the endpoint (no secret in it; else use urlEnv)")
    url_env: str | None = Field(
        default=None, pattern=_ENV_NAME, description="variable holding the endpoint (Slack's URL is a secret)"
    )
    secret_env: str | None = Field(
        default=None, pattern=_ENV_NAME, description="webhook: variable holding the HMAC SHA-256 key"
    )
    triggers: list[str] = Field(
        default_factory=lambda: ["on-succeeded", "on-rolled-back", "on-failed"],
        min_length=1,
        description="on-started, on-awaiting-approval (a pull request to merge too), on-succeeded, "
        "on-rolled-back (abort too), on-failed, on-drift (a new drift found by `drift` or `status`)",
    )

    @field_validator("triggers")
    @classmethod
    def _known_triggers(cls, value: list[str]) -> list[str]:
        for trigger in value:
            if trigger not in TRIGGERS:
                raise ValueError(f"unknown trigger {trigger!r}; known triggers: {', '.join(TRIGGERS)}")
        return value

    @model_validator(mode="after")
    def _one_url(self) -> NotificationConfig:
        if (self.url is None) == (self.url_env is None):
            raise KeyProblem("give exactly one of url and urlEnv", "urlEnv" if self.url_env else "url")
        if self.url is not None and not self.url.startswith(("https://", "http://")):
            raise KeyProblem(f"{self.url!r} is not an http(s):// URL", "url")
        if self.secret_env is not None and self.type != "webhook":
            raise KeyProblem("secretEnv signs generic webhooks only (type: webhook)", "secretEnv")
        return self


class GitHubApi(ConfigModel):
    """A GitHub repository and how its REST API is reached (github3.py): the root, the token, a private CA."""

    repository: str = Field(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", description="owner/name")
    api_url: str = Field(
        default="https://api.github.com",
        pattern=r"^https?://",
        description="the REST API root (GitHub Enterprise: https://HOST/api/v3)",
    )
    token_env: str = Field(
        default="GITHUB_TOKEN",
        pattern=_ENV_NAME,
        description="variable holding a token (deployments: write; pull-request mode: contents and pull "
        "requests: write)",
    )
    ca_bundle: str | None = Field(
        default=None,
        description="PEM file (relative to the checkout) of a private CA signing the API's certificate",
    )


class GitHubConfig(GitHubApi):
    """Each deployment mirrored as a GitHub deployment of `repository` (environment: this one's name), its
    statuses queued → in_progress → success | failure, and inactive for the one a success replaced."""

    environment_url: str | None = Field(
        default=None, pattern=r"^https?://", description="the environment's own URL, shown on GitHub"
    )


class GitOpsConfig(ConfigModel):
    """Where the environment's desired state is committed. Default: a repository the orchestrator keeps in
    its state folder (`<state>/gitops/default.git`), so the embedded default needs nothing."""

    repository: str | None = Field(
        default=None,
        description="a local path (relative to the checkout), file://, https:// or ssh:// URL; default: "
        "the state folder's own repository",
    )
    branch: str = Field(default="main", pattern=r"^[A-Za-z0-9._/-]+$")
    path: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9._/-]*$",
        description="folder in the repository for this environment's files; default: the environment's name",
    )
    token_env: str | None = Field(default=None, description="variable holding an https:// token")
    mode: Literal["commit", "pull-request"] = Field(
        default="commit",
        description="commit: onto the branch, then roll out; pull-request: push a branch, open a pull "
        "request in `github`, roll out when it is merged",
    )
    github: GitHubApi | None = Field(
        default=None, description="pull-request mode: the GitHub repository holding `repository`"
    )

    @field_validator("branch")
    @classmethod
    def _branch(cls, value: str) -> str:
        parts = value.split("/")
        if any(not part or part.startswith(".") or part.endswith(".lock") for part in parts) or ".." in value:
            raise ValueError(f"{value!r} is not a branch name git accepts")
        return value

    @field_validator("path")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = [part for part in value.strip("/").split("/") if part]
        if value.startswith("/") or ".." in parts:
            raise ValueError(f"{value!r} must be a folder inside the repository (relative, no '..')")
        return "/".join(parts)

    @model_validator(mode="after")
    def _pull_requests(self) -> GitOpsConfig:
        if self.mode != "pull-request":
            if self.github is not None:
                raise KeyProblem(
                    "github is the pull-request mode's repository; set mode: pull-request", "github"
                )
            return self
        if self.repository is None:
            raise KeyProblem(
                "pull-request mode needs `repository`: the state folder's own repository has no GitHub to "
                "open a pull request in",
                "mode",
            )
        if self.github is None:
            raise KeyProblem(
                "pull-request mode needs `github` (repository: owner/name, apiUrl, tokenEnv): where the "
                "pull requests are opened",
                "mode",
            )
        return self


class ImageRef(ConfigModel):
    """An image named outright: `repository` plus a `digest` (preferred) or a `tag`."""

    repository: str
    tag: str | None = None
    digest: str | None = Field(default=None, pattern=r"^sha256:[0-9a-f]{64}$")

    @model_validator(mode="after")
    def _tag_or_digest(self) -> ImageRef:
        if not self.tag and not self.digest:
            raise ValueError("an image names a tag or a digest")
        return self

    @property
    def reference(self) -> str:
        if self.digest:
            return f"{self.repository}@{self.digest}"
        return f"{self.repository}:{self.tag}"


class Environment(ConfigModel):
    """One environment; the file name (without .yaml) is its name."""

    name: DnsLabel
    namespace: DnsLabel = "addtocloud"
    description: str = ""
    clusters: list[ClusterConfig] = Field(min_length=1)
    values: dict[str, Any] = Field(default_factory=dict)
    waves: list[list[str]] | None = Field(
        default=None, description="cluster names per wave; default: one wave per cluster, in order"
    )
    approval: ApprovalPolicy = Field(default_factory=ApprovalPolicy)
    deployers: list[str] = Field(
        default_factory=lambda: ["admin", "deployer"], description="roles or user emails allowed to deploy"
    )
    freeze_windows: list[FreezeWindow] = Field(
        default_factory=list,
        description="no deploy, retry or approval starts a rollout inside one (admins: --override-freeze)",
    )
    images: dict[str, ImageRef] = Field(
        default_factory=dict, description="per service: the image used when none was built or given"
    )
    registries: dict[str, RegistryConfig] = Field(default_factory=dict)
    prometheus: str | None = Field(default=None, description="Prometheus URL for analysis")
    gitops: GitOpsConfig = Field(default_factory=GitOpsConfig)
    notifications: list[NotificationConfig] = Field(
        default_factory=list, description="where the environment's rollouts are announced"
    )
    github: GitHubConfig | None = Field(
        default=None, description="mirror each deployment as a GitHub deployment with statuses"
    )

    @model_validator(mode="after")
    def _consistent(self) -> Environment:
        names = [c.name for c in self.clusters]
        for index, name in enumerate(names):
            if name in names[:index]:
                raise KeyProblem(f"cluster names must be unique; repeated: {name}", "clusters", index, "name")
        total = sum(c.weight for c in self.clusters)
        if total != 100:
            # No one weight is wrong; the last cluster's is where the sum is completed.
            shares = " + ".join(str(c.weight) for c in self.clusters)
            raise KeyProblem(
                f"cluster weights must add up to 100, they add up to {total} ({shares})",
                "clusters",
                len(self.clusters) - 1,
                "weight",
            )
        for index, cluster in enumerate(self.clusters):
            if cluster.registry is not None and cluster.registry not in self.registries:
                known = ", ".join(sorted(self.registries)) or "none"
                raise KeyProblem(
                    f"cluster {cluster.name!r} names registry {cluster.registry!r}; "
                    f"known registries: {known}",
                    "clusters",
                    index,
                    "registry",
                )
        destinations = [n.name for n in self.notifications]
        for index, name in enumerate(destinations):
            if name in destinations[:index]:
                raise KeyProblem(
                    f"notification names must be unique; repeated: {name}", "notifications", index, "name"
                )
        if self.waves is not None:
            seen: set[str] = set()
            for wave_index, wave in enumerate(self.waves):
                for index, name in enumerate(wave):
                    if name not in names:
                        raise KeyProblem(
                            f"waves name unknown cluster {name}; known: {', '.join(names)}",
                            "waves",
                            wave_index,
                            index,
                        )
                    if name in seen:
                        raise KeyProblem(
                            f"waves name cluster {name} twice; each cluster is in exactly one wave",
                            "waves",
                            wave_index,
                            index,
                        )
                    seen.add(name)
            missing = [n for n in names if n not in seen]
            if missing:
                raise KeyProblem(
                    f"waves must name every cluster exactly once; missing: {', '.join(missing)}", "waves"
                )
        return self

    def cluster(self, name: str) -> ClusterConfig:
        for cluster in self.clusters:
            if cluster.name == name:
                return cluster
        from orchestrator.errors import UnknownNameError

        raise UnknownNameError("cluster", name, [c.name for c in self.clusters])

    def rollout_waves(self) -> list[list[ClusterConfig]]:
        if self.waves is None:
            return [[c] for c in self.clusters]
        return [[self.cluster(n) for n in wave] for wave in self.waves]
