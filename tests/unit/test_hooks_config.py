"""A pipeline's hooks: each names one target; a cache purge only after a promotion; the hosts it purges."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from orchestrator.config import Project
from orchestrator.config.pipeline import Hooks
from orchestrator.notify.hooks import owed_hooks, served_hosts
from tests.helpers import REPO


def test_a_hook_names_exactly_one_target() -> None:
    with pytest.raises(ValidationError, match="exactly one of url, urlEnv or cloudflarePurge"):
        Hooks.model_validate({"preRollout": [{"name": "a"}]})
    with pytest.raises(ValidationError, match=r"\(got url, urlEnv\)"):
        Hooks.model_validate({"postRollout": [{"name": "a", "url": "http://x", "urlEnv": "X"}]})


def test_a_cache_purge_belongs_after_the_promotion() -> None:
    purge = {"name": "cdn", "cloudflarePurge": {"zoneId": "0" * 32}}
    with pytest.raises(ValidationError, match="a cache purge belongs in postPromotion"):
        Hooks.model_validate({"preRollout": [purge]})
    assert Hooks.model_validate({"postPromotion": [purge]}).post_promotion[0].cloudflare_purge is not None


def test_which_hooks_a_rollout_end_owes() -> None:
    project = Project(REPO)
    pipeline = project.pipeline("api").model_copy(
        update={
            "hooks": Hooks.model_validate(
                {
                    "postRollout": [{"name": "log", "url": "http://x"}],
                    "postPromotion": [{"name": "p", "url": "http://y"}],
                }
            )
        }
    )
    assert owed_hooks(pipeline, "on-succeeded") == [("postRollout:log", "hook"), ("postPromotion:p", "hook")]
    assert owed_hooks(pipeline, "on-rolled-back") == [("postRollout:log", "hook")]
    assert owed_hooks(pipeline, "on-started") == []


def test_the_purged_hosts_are_the_public_routes_hosts() -> None:
    sets = [
        {
            "objects": [
                {"kind": "VirtualService", "spec": {"hosts": ["api.svc.cluster.local"]}},
                {
                    "kind": "VirtualService",
                    "spec": {"hosts": ["api.example.com", "*.example.com"], "gateways": ["gw"]},
                },
                {"kind": "VirtualService", "spec": {"hosts": ["internal.example.com"], "gateways": ["mesh"]}},
                {"kind": "Gateway", "spec": {"servers": [{"hosts": ["*.example.com"]}]}},
            ]
        }
    ] * 2
    assert served_hosts(sets) == ["api.example.com"]
