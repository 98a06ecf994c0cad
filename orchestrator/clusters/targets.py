"""How to reach one cluster: the `target:` of a cluster in `environments/<env>.yaml`.

Each kind of target is a small model; `ClusterTarget` picks one by its `type` key. Defaults that depend
on the machine (the kubeconfig path, the Azure subscription) are left unset here and resolved when
connecting, so an environment file means the same thing on every machine.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class _TargetModel(BaseModel):
    # The same rules as the configuration models (camelCase keys, unknown keys refused); defined here
    # because `config` imports this module, not the other way round.
    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
    )


class KubeconfigTarget(_TargetModel):
    """Any cluster a kubeconfig reaches: kind, k3d, on-premises, or a cloud cluster set up by its CLI."""

    type: Literal["kubeconfig"] = "kubeconfig"
    path: str | None = Field(
        default=None,
        description="kubeconfig file (several joined by ':'); default: $KUBECONFIG, else ~/.kube/config",
    )
    context: str | None = Field(default=None, description="context to use; default: the current context")

    def describe(self) -> str:
        return f"kubeconfig context {self.context}" if self.context else "kubeconfig current context"


class EksTarget(_TargetModel):
    """An Amazon EKS cluster, reached with the AWS credentials of the environment (boto3's usual chain)."""

    type: Literal["eks"] = "eks"
    cluster: str = Field(min_length=1, description="EKS cluster name")
    region: str = Field(min_length=1, description="AWS region, e.g. eu-west-1")
    role_arn: str | None = Field(default=None, description="IAM role to assume before talking to the cluster")
    endpoint_url: str | None = Field(
        default=None, description="EKS- and STS-compatible endpoint instead of AWS (for tests and proxies)"
    )

    def describe(self) -> str:
        return f"EKS cluster {self.cluster} in {self.region}"


class AksTarget(_TargetModel):
    """An Azure AKS cluster, reached with azure-identity's DefaultAzureCredential."""

    type: Literal["aks"] = "aks"
    cluster: str = Field(min_length=1, description="AKS managed cluster name")
    resource_group: str = Field(min_length=1, description="resource group of the cluster")
    subscription_id: str | None = Field(
        default=None, description="Azure subscription; default: $AZURE_SUBSCRIPTION_ID"
    )
    base_url: str | None = Field(
        default=None, description="Azure Resource Manager endpoint; default: https://management.azure.com"
    )

    def describe(self) -> str:
        return f"AKS cluster {self.cluster} in resource group {self.resource_group}"


class GkeTarget(_TargetModel):
    """A Google GKE cluster, reached with Google application default credentials."""

    type: Literal["gke"] = "gke"
    cluster: str = Field(min_length=1, description="GKE cluster name")
    project: str = Field(min_length=1, description="Google Cloud project id")
    location: str = Field(min_length=1, description="region or zone of the cluster, e.g. europe-west1")
    api_endpoint: str | None = Field(
        default=None, description="GKE API endpoint; default: https://container.googleapis.com"
    )

    def describe(self) -> str:
        return f"GKE cluster {self.cluster} in {self.project}/{self.location}"


class SimTarget(_TargetModel):
    """One cluster of the built-in emulator started by `orchestrator sim up`."""

    type: Literal["sim"] = "sim"
    cluster: str = Field(min_length=1, description="emulated cluster name: aws, azure, gcp, ...")
    state_dir: str | None = Field(
        default=None,
        description="the orchestrator state folder holding the running sim (sim/state.json in it); "
        "default: $ORCHESTRATOR_STATE_DIR, else ./.orchestrator",
    )

    def describe(self) -> str:
        return f"sim cluster {self.cluster}"


ClusterTarget = Annotated[
    KubeconfigTarget | EksTarget | AksTarget | GkeTarget | SimTarget,
    Field(discriminator="type"),
]
