"""`authorization.k8s.io/v1`: the access reviews `kubectl auth can-i` sends.

The sim has one identity, its bearer token (the transport refuses every other), and that identity may do
everything, as a cluster-admin may: every SelfSubjectAccessReview is allowed and SelfSubjectRulesReview
lists `*` rules. The review is answered, not stored, as a real API server does.
"""

from __future__ import annotations

from typing import Any

from orchestrator.sim.errors import ApiError, invalid

GROUP = "authorization.k8s.io"
VERSION = "v1"
REASON = "the addtocloud sim allows its token everything"
# Discovery entries (APIResourceList) for the group: create-only, never listed or watched.
RESOURCES: list[dict[str, Any]] = [
    {"name": plural, "singularName": "", "namespaced": False, "kind": kind, "verbs": ["create"]}
    for plural, kind in (
        ("selfsubjectaccessreviews", "SelfSubjectAccessReview"),
        ("selfsubjectrulesreviews", "SelfSubjectRulesReview"),
    )
]
_KINDS = {entry["name"]: entry["kind"] for entry in RESOURCES}


def review(resource: str, method: str, body: Any) -> dict[str, Any]:
    """The answered review for POST /apis/authorization.k8s.io/v1/<resource>."""
    kind = _KINDS.get(resource)
    if kind is None:
        raise ApiError(404, "the server could not find the requested resource")
    if method != "POST":
        raise ApiError(405, f"the server does not allow this method on the requested resource: {method}")
    if not isinstance(body, dict) or body.get("kind") not in (None, kind):
        raise ApiError(400, f"the request body is not a {kind}")
    spec = body.get("spec")
    if not isinstance(spec, dict):
        raise invalid(kind, "", GROUP, [("spec", "Required value")])
    if kind == "SelfSubjectAccessReview":
        if not spec.get("resourceAttributes") and not spec.get("nonResourceAttributes"):
            problem = "Invalid value: exactly one of nonResourceAttributes or resourceAttributes"
            raise invalid(kind, "", GROUP, [("spec", problem)])
        status: dict[str, Any] = {"allowed": True, "reason": REASON}
    else:
        status = {
            "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
            "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
            "incomplete": False,
        }
    metadata = body.get("metadata")
    if not isinstance(metadata, dict):
        metadata = {}
    return {
        "kind": kind,
        "apiVersion": f"{GROUP}/{VERSION}",
        "metadata": {"creationTimestamp": None, **metadata},
        "spec": spec,
        "status": status,
    }
