"""Cluster targets as written under `target:` in `environments/<env>.yaml`: camelCase, chosen by `type`."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from orchestrator.clusters import AksTarget, ClusterTarget, EksTarget, GkeTarget, KubeconfigTarget, SimTarget

targets: TypeAdapter[ClusterTarget] = TypeAdapter(ClusterTarget)


def test_each_type_reads_its_camel_case_keys() -> None:
    assert targets.validate_python(
        {
            "type": "eks",
            "cluster": "prod",
            "region": "eu-west-1",
            "roleArn": "arn:aws:iam::1:role/d",
            "endpointUrl": "http://x",
        }
    ) == EksTarget(
        cluster="prod", region="eu-west-1", role_arn="arn:aws:iam::1:role/d", endpoint_url="http://x"
    )
    assert targets.validate_python(
        {
            "type": "aks",
            "cluster": "prod",
            "resourceGroup": "rg",
            "subscriptionId": "s",
            "baseUrl": "https://arm",
        }
    ) == AksTarget(cluster="prod", resource_group="rg", subscription_id="s", base_url="https://arm")
    assert targets.validate_python(
        {
            "type": "gke",
            "cluster": "prod",
            "project": "p",
            "location": "europe-west1",
            "apiEndpoint": "https://g",
        }
    ) == GkeTarget(cluster="prod", project="p", location="europe-west1", api_endpoint="https://g")
    assert targets.validate_python({"type": "kubeconfig", "context": "kind-dev"}) == KubeconfigTarget(
        context="kind-dev"
    )
    assert targets.validate_python({"type": "sim", "cluster": "aws", "stateDir": ".st"}) == SimTarget(
        cluster="aws", state_dir=".st"
    )


def test_optional_keys_stay_unset_until_connecting() -> None:
    # machine-dependent defaults ($KUBECONFIG, $AZURE_SUBSCRIPTION_ID) are resolved by connect(), not here
    assert targets.validate_python({"type": "kubeconfig"}) == KubeconfigTarget(path=None, context=None)
    aks = targets.validate_python({"type": "aks", "cluster": "c", "resourceGroup": "rg"})
    assert isinstance(aks, AksTarget) and aks.subscription_id is None


@pytest.mark.parametrize(
    ("document", "complaint"),
    [
        (
            {"type": "eks", "cluster": "prod", "region": "eu-west-1", "role": "x"},
            "eks.role\n  Extra inputs are not permitted",
        ),
        ({"type": "eks", "cluster": "prod"}, "eks.region\n  Field required"),
        (
            {"type": "openshift", "cluster": "prod"},
            "does not match any of the expected tags: 'kubeconfig', 'eks', 'aks'",
        ),
        ({"cluster": "prod"}, "Unable to extract tag using discriminator 'type'"),
        (
            {"type": "gke", "cluster": "", "project": "p", "location": "l"},
            "gke.cluster\n  String should have at least 1",
        ),
    ],
)
def test_bad_targets_are_refused_naming_the_key(document: dict[str, str], complaint: str) -> None:
    with pytest.raises(ValidationError) as caught:
        targets.validate_python(document)

    assert complaint in str(caught.value)


def test_targets_are_immutable() -> None:
    target = SimTarget(cluster="aws")
    with pytest.raises(ValidationError):
        target.cluster = "gcp"  # type: ignore[misc]
