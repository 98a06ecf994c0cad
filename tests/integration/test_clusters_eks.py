"""`eks` targets against moto (EKS + STS, in server mode) and the emulator checking EKS tokens as EKS does.

moto stands in for the AWS APIs; the emulator stands in for the cluster's API server, and its
authenticator recomputes each token's SigV4 signature with the test's secret key, so a token is accepted
only if it is exactly what aws-iam-authenticator would accept.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import boto3
import kubernetes.client
import pytest

from orchestrator.clusters import ClusterConnectionError, EksTarget, connect
from orchestrator.clusters.eks import connect_eks
from orchestrator.sim.server import SimServer
from tests.fakes.aws import EksTokenVerifier, MotoServer, moto_assumed_role_secret, point_eks_cluster_at
from tests.fakes.environment import isolate_cloud_environment

REGION = "eu-west-1"
ACCESS_KEY = "AKIAEKSTESTKEY000001"
SECRET_KEY = "eks-test-secret-key"
ACCOUNT = "123456789012"


@pytest.fixture
def moto(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[MotoServer]:
    isolate_cloud_environment(monkeypatch, tmp_path / "home")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    with MotoServer() as server:
        yield server


@pytest.fixture
def verifier(moto: MotoServer) -> EksTokenVerifier:
    known = {ACCESS_KEY: SECRET_KEY}
    return EksTokenVerifier(
        sts_url=moto.url,
        secret_for=lambda key: known.get(key) or moto_assumed_role_secret(key),
        cluster_ids={"aws": "demo"},  # the emulated cluster "aws" is the EKS cluster "demo"
    )


@pytest.fixture
def sim(verifier: EksTokenVerifier, tmp_path: Path) -> Iterator[SimServer]:
    with SimServer(
        clusters=("aws",), state_dir=tmp_path / "sim", authenticator=verifier.authenticator
    ) as server:
        yield server


@pytest.fixture
def target(moto: MotoServer, sim: SimServer) -> EksTarget:
    eks = boto3.client("eks", region_name=REGION, endpoint_url=moto.url)
    eks.create_cluster(
        name="demo",
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/eks-cluster",
        resourcesVpcConfig={"subnetIds": ["subnet-1", "subnet-2"]},
    )
    point_eks_cluster_at("demo", region=REGION, endpoint=sim.endpoint("aws"), ca_pem=sim.ca_path.read_bytes())
    return EksTarget(cluster="demo", region=REGION, endpoint_url=moto.url)


def test_connects_with_a_presigned_sts_token_the_cluster_verifies(
    target: EksTarget, verifier: EksTokenVerifier
) -> None:
    api = connect(target, name="prod-aws")

    names = [
        ns.metadata.name for ns in kubernetes.client.CoreV1Api(api).list_namespace().items if ns.metadata
    ]
    assert "default" in names
    assert verifier.rejected == []
    assert (
        verifier.accepted == [("demo", f"arn:aws:sts::{ACCOUNT}:user/moto")] * 2
    )  # the probe, then the list


def test_the_token_has_the_aws_iam_authenticator_format(target: EksTarget, moto: MotoServer) -> None:
    api = connect(target, name="prod-aws")
    token = api.configuration.api_key["BearerToken"].removeprefix("Bearer ")

    assert token.startswith("k8s-aws-v1.") and not token.endswith("=")
    url = base64.urlsafe_b64decode(token.removeprefix("k8s-aws-v1.") + "==").decode()
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert f"{parts.scheme}://{parts.netloc}" == moto.url and parts.path == "/"
    assert query["Action"] == "GetCallerIdentity" and query["Version"] == "2011-06-15"
    assert query["X-Amz-Expires"] == "60"
    assert query["X-Amz-SignedHeaders"] == "host;x-k8s-aws-id"
    assert (
        query["X-Amz-Credential"].startswith(f"{ACCESS_KEY}/")
        and f"/{REGION}/sts/" in query["X-Amz-Credential"]
    )


def test_a_wrong_secret_key_is_refused_by_the_cluster(
    target: EksTarget, verifier: EksTokenVerifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")  # moto itself never checks signatures

    with pytest.raises(ClusterConnectionError) as caught:
        connect(target, name="prod-aws")

    assert caught.value.cluster == "prod-aws"
    assert "(EKS cluster demo in eu-west-1)" in str(caught.value)
    assert "rejected our credentials (401 Unauthorized)" in str(caught.value)
    assert "EKS access entry" in str(caught.value)
    assert verifier.rejected == [
        ("demo", "SigV4 signature does not match (wrong secret key or tampered token)")
    ]


def test_a_token_signed_for_another_cluster_is_refused(target: EksTarget, verifier: EksTokenVerifier) -> None:
    verifier.cluster_ids["aws"] = "payments"  # the API server behind this endpoint belongs to another cluster

    with pytest.raises(ClusterConnectionError, match="401 Unauthorized"):
        connect(target, name="prod-aws")

    assert verifier.accepted == []
    assert verifier.rejected[0][0] == "payments"


def test_an_unknown_eks_cluster_is_named(target: EksTarget) -> None:
    with pytest.raises(ClusterConnectionError) as caught:
        connect(target.model_copy(update={"cluster": "ghost"}), name="prod-aws")

    assert str(caught.value) == (
        "cluster 'prod-aws' (EKS cluster ghost in eu-west-1): eks:DescribeCluster failed: "
        "the EKS cluster does not exist (No cluster found for name: ghost.)"
    )


def test_no_aws_credentials_at_all_is_explained(target: EksTarget, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    with pytest.raises(ClusterConnectionError, match="no AWS credentials found"):
        connect(target, name="prod-aws")


def test_an_unreachable_eks_api_is_reported(target: EksTarget) -> None:
    with pytest.raises(ClusterConnectionError) as caught:
        connect(target.model_copy(update={"endpoint_url": "http://127.0.0.1:9"}), name="prod-aws")

    assert str(caught.value).startswith(
        "cluster 'prod-aws' (EKS cluster demo in eu-west-1): eks:DescribeCluster"
    )
    assert "Could not connect to the endpoint URL" in str(caught.value)


def test_a_cluster_whose_api_server_is_down_is_reported(target: EksTarget, sim: SimServer) -> None:
    sim.cluster("aws").set_down()

    with pytest.raises(
        ClusterConnectionError, match=r"cannot reach the API server at .*: connection refused"
    ):
        connect(target, name="prod-aws")


def test_a_role_is_assumed_and_its_temporary_credentials_sign_the_token(
    target: EksTarget, moto: MotoServer, verifier: EksTokenVerifier
) -> None:
    iam = boto3.client("iam", region_name=REGION, endpoint_url=moto.url)
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "sts:AssumeRole"}],
    }
    role_arn = iam.create_role(RoleName="deployer", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]

    api = connect(target.model_copy(update={"role_arn": role_arn}), name="prod-aws")
    kubernetes.client.CoreV1Api(api).list_namespace()

    assert verifier.rejected == []
    assert {arn for _, arn in verifier.accepted} == {
        f"arn:aws:sts::{ACCOUNT}:assumed-role/deployer/addtocloud-orchestrator"
    }


def test_the_token_is_renewed_before_it_expires(target: EksTarget, sim: SimServer) -> None:
    seen: list[str] = []
    check = sim.authenticator
    assert check is not None

    def recording(cluster: str, token: str) -> bool:
        seen.append(token)
        return check(cluster, token)

    sim.authenticator = recording
    now = [time.time()]
    api = connect_eks(target, name="prod-aws", clock=lambda: now[0])
    core = kubernetes.client.CoreV1Api(api)

    time.sleep(1.1)  # a token made now would differ (X-Amz-Date has one-second resolution)
    core.list_namespace()
    assert seen[-1] == seen[0], "a token is reused while it is fresh"

    now[0] += 14 * 60 + 1  # within a minute of the 15-minute lifetime
    core.list_namespace()
    assert seen[-1] != seen[0], "a token close to expiry is replaced"
    core.list_namespace()
    assert seen[-1] == seen[-2]
