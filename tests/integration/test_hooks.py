"""A pipeline's hooks on the emulator: a pre-rollout hook that refuses stops the rollout before anything is
committed or applied; one that agrees is asked (signed) and the rollout goes on; a post-rollout webhook hears
its end (signed, a 503 retried); the built-in post-promotion
Cloudflare purge reaches a local fake of Cloudflare's API with the service's hosts, after a refusal, and
changes nothing of the outcome."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from orchestrator.config import Project
from orchestrator.kube.live import read_live
from orchestrator.notify.notifier import Notifier, RetryPolicy
from orchestrator.outbound.signing import verify
from orchestrator.sim.server import SimServer
from orchestrator.store import repository as repo
from orchestrator.store.models import Phase
from tests.fakes.receiver import Receiver
from tests.integration.rollout_fixtures import FAST_CANARY, estate_with_strategy, sim_client, sim_engine
from tests.integration.test_canary_gates import request

ZONE = "0123456789abcdef0123456789abcdef"


def with_hooks(tmp_path: Path, hooks: str) -> Project:
    root = estate_with_strategy(tmp_path / "estate", FAST_CANARY)
    pipeline = root / "pipelines" / "api.yaml"
    pipeline.write_text(pipeline.read_text() + "hooks:\n" + hooks)
    return Project(root)


def test_a_refusing_pre_rollout_hook_stops_the_rollout_with_nothing_committed_or_applied(
    tmp_path: Path, sessions: sessionmaker[Session], sim: SimServer
) -> None:
    with Receiver(answers=[503, 503, 503]) as gate:
        project = with_hooks(tmp_path, f"  preRollout:\n    - name: change-freeze\n      url: {gate.url}\n")
        url = gate.url
        engine = sim_engine(project, sessions, sim)
        deployment_id = engine.create(request())
        assert engine.run(deployment_id) is Phase.FAILED
    assert [r.status for r in gate.received] == [503, 503, 503]
    with sessions() as session:
        deployment = repo.get_deployment(session, deployment_id)
        assert deployment.reason == "PreRolloutHookFailed" and deployment.gitops_commit is None
        assert "preRollout hook change-freeze: HTTP 503" in (deployment.message or "")
        assert url not in (deployment.message or "")
        assert [e.data["event"] for e in repo.events_for(session, deployment_id) if e.type == "phase"][
            -1
        ] == ("hook_failed")
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment"}
    deployment["metadata"] = {"name": "api", "namespace": "addtocloud"}
    for cluster in ("aws", "azure", "gcp"):
        assert read_live(sim_client(sim, cluster), deployment) is None


def test_an_agreeing_hook_is_asked_signed_and_a_purge_follows_the_promotion(
    tmp_path: Path, sessions: sessionmaker[Session], sim: SimServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK_SECRET", "hook-key")
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", "cf-token")
    with Receiver() as gate, Receiver(answers=[500]) as cloudflare, Receiver(answers=[503]) as after:
        api = cloudflare.url.removesuffix("/hook")
        project = with_hooks(
            tmp_path,
            f"  preRollout:\n    - name: ticket\n      url: {gate.url}\n      secretEnv: HOOK_SECRET\n"
            f"  postRollout:\n    - name: smoke\n      url: {after.url}\n      secretEnv: HOOK_SECRET\n"
            f"  postPromotion:\n    - name: purge-cdn\n"
            f"      cloudflarePurge: {{zoneId: {ZONE}, apiUrl: '{api}'}}\n",
        )
        engine = sim_engine(project, sessions, sim)
        notifier = Notifier(project, sessions, retry=RetryPolicy(4, 0.1, 0.5), poll_interval=0.1).start()
        try:
            deployment_id = engine.create(request())
            assert engine.run(deployment_id) is Phase.SUCCEEDED
        finally:
            notifier.stop(flush_seconds=10)

    [asked] = gate.received
    assert verify(asked.body, asked.headers["x-signature"], "hook-key")
    body = asked.json()
    assert (body["hook"], body["name"], body["service"], body["deployment"]) == (
        "preRollout",
        "ticket",
        "api",
        str(deployment_id),
    )
    # The post-rollout hook hears the rollout's end, signed; a 503 is retried and changes no outcome.
    assert [r.status for r in after.received] == [503, 200]
    ended = after.delivered[0]
    assert verify(ended.body, ended.headers["x-signature"], "hook-key")
    assert (ended.json()["hook"], ended.json()["name"]) == ("postRollout", "smoke")
    assert ended.json()["deployment"]["phase"] == "Succeeded"
    with sessions() as session:
        assert repo.get_deployment(session, deployment_id).phase == Phase.SUCCEEDED
    assert [r.status for r in cloudflare.received] == [500, 200]  # retried, then purged
    purge = cloudflare.delivered[0]
    assert purge.path == f"/client/v4/zones/{ZONE}/purge_cache"
    assert purge.headers["authorization"] == "Bearer cf-token"
    assert json.loads(purge.body) == {"hosts": ["api.addtocloud.com"]}
