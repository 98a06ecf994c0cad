"""Amazon EKS: endpoint and CA from `eks:DescribeCluster`, a bearer token from a presigned STS request.

The token is what `aws eks get-token` and aws-iam-authenticator hand to kubectl: `k8s-aws-v1.` followed by
the unpadded base64url of a presigned `sts:GetCallerIdentity` URL whose signature covers the
`x-k8s-aws-id: <cluster>` header. The cluster's authenticator replays the URL to STS to learn who we are;
the signed header stops a token made for one cluster from being accepted by another.
"""

from __future__ import annotations

import base64
import time
from typing import Any

import boto3
import botocore.exceptions
import kubernetes.client
from botocore.config import Config

from orchestrator.clusters.apiclient import (
    BearerToken,
    Clock,
    RefreshingToken,
    api_client_for,
    verify_connection,
)
from orchestrator.clusters.errors import ClusterConnectionError
from orchestrator.clusters.pem import certificate_authority_pem
from orchestrator.clusters.targets import EksTarget

TOKEN_PREFIX = "k8s-aws-v1."
CLUSTER_ID_HEADER = "x-k8s-aws-id"
# STS ignores X-Amz-Expires for GetCallerIdentity and accepts the URL for 15 minutes after X-Amz-Date;
# 60 is the value every EKS token generator sends (old authenticators refuse more).
PRESIGN_EXPIRES_SECONDS = 60
TOKEN_LIFETIME_SECONDS = 15 * 60
ROLE_SESSION_NAME = "addtocloud-orchestrator"
ACCESS_HINT = "check that this IAM identity has an EKS access entry (or an aws-auth mapping) on the cluster"

_BOTO_CONFIG = Config(
    connect_timeout=10,
    read_timeout=30,
    retries={"mode": "standard", "max_attempts": 3},
)


def connect_eks(target: EksTarget, *, name: str, clock: Clock = time.time) -> kubernetes.client.ApiClient:
    described = target.describe()
    credentials = _AwsCredentials(target, name=name, clock=clock)
    try:
        eks = boto3.Session(**credentials.session_kwargs()).client(
            "eks", region_name=target.region, endpoint_url=target.endpoint_url, config=_BOTO_CONFIG
        )
        cluster = eks.describe_cluster(name=target.cluster)["cluster"]
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        raise ClusterConnectionError(name, _aws_cause(exc, "eks:DescribeCluster"), target=described) from exc

    endpoint = cluster.get("endpoint")
    ca_data = (cluster.get("certificateAuthority") or {}).get("data")
    if not endpoint or not ca_data:
        status = cluster.get("status", "UNKNOWN")
        raise ClusterConnectionError(
            name, f"the EKS cluster has no API endpoint yet (status {status})", target=described
        )
    ca_pem = certificate_authority_pem(ca_data, cluster=name, target=described, source="EKS")

    def fetch() -> BearerToken:
        value = eks_token(target.cluster, credentials=credentials.session_kwargs(), target=target)
        return BearerToken(value, expires_at=clock() + TOKEN_LIFETIME_SECONDS)

    token = RefreshingToken(fetch, cluster=name, target=described, clock=clock)
    api_client = api_client_for(endpoint, ca_pem=ca_pem, token=token)
    try:
        verify_connection(api_client, cluster=name, target=described, access_hint=ACCESS_HINT)
    except ClusterConnectionError:
        api_client.close()
        raise
    return api_client


def eks_token(cluster: str, *, credentials: dict[str, Any], target: EksTarget) -> str:
    """A fresh EKS bearer token for `cluster`, signed with `credentials` (boto3 Session keyword arguments)."""
    sts = boto3.Session(**credentials).client(
        "sts", region_name=target.region, endpoint_url=target.endpoint_url, config=_BOTO_CONFIG
    )

    def sign_cluster_id(request: Any, **_: Any) -> None:
        request.headers[CLUSTER_ID_HEADER] = cluster

    # botocore's event hook is the supported way to add a header to what it signs (awscli does the same).
    sts.meta.events.register("before-sign.sts.GetCallerIdentity", sign_cluster_id)
    url = sts.generate_presigned_url(
        "get_caller_identity", ExpiresIn=PRESIGN_EXPIRES_SECONDS, HttpMethod="GET"
    )
    return TOKEN_PREFIX + base64.urlsafe_b64encode(url.encode("utf-8")).decode("ascii").rstrip("=")


class _AwsCredentials:
    """The credentials to sign with: boto3's default chain, or a role assumed from it and renewed."""

    def __init__(self, target: EksTarget, *, name: str, clock: Clock) -> None:
        self._target = target
        self._name = name
        self._clock = clock
        self._assumed: dict[str, Any] | None = None
        self._assumed_until = 0.0

    def session_kwargs(self) -> dict[str, Any]:
        if self._target.role_arn is None:
            return {}
        if self._assumed is None or self._clock() >= self._assumed_until - 5 * 60:
            self._assume_role(self._target.role_arn)
        assert self._assumed is not None
        return self._assumed

    def _assume_role(self, role_arn: str) -> None:
        sts = boto3.Session().client(
            "sts",
            region_name=self._target.region,
            endpoint_url=self._target.endpoint_url,
            config=_BOTO_CONFIG,
        )
        try:
            answer = sts.assume_role(RoleArn=role_arn, RoleSessionName=ROLE_SESSION_NAME)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise ClusterConnectionError(
                self._name, _aws_cause(exc, f"sts:AssumeRole {role_arn}"), target=self._target.describe()
            ) from exc
        creds = answer["Credentials"]
        self._assumed = {
            "aws_access_key_id": creds["AccessKeyId"],
            "aws_secret_access_key": creds["SecretAccessKey"],
            "aws_session_token": creds["SessionToken"],
        }
        lifetime = creds["Expiration"].timestamp() - time.time()
        self._assumed_until = self._clock() + lifetime


def _aws_cause(exc: Exception, call: str) -> str:
    if isinstance(exc, botocore.exceptions.NoCredentialsError):
        return f"{call} failed: no AWS credentials found (environment, ~/.aws, or an instance/pod role)"
    if isinstance(exc, botocore.exceptions.ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code", "Error")
        message = error.get("Message") or str(exc)
        if code in ("ResourceNotFoundException", "NotFoundException"):
            return f"{call} failed: the EKS cluster does not exist ({message})"
        return f"{call} failed: {code}: {message}"
    return f"{call} failed: {exc}"
