"""The webhook receiver over real HTTP: signatures, sizes, bad JSON, replays, unknown repositories and
services, and no secret in the logs. The state database is SQLite; the jobs the server would run are not
the subject here (an accepted push's request is checked in the store)."""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from orchestrator.logs import configure_logging
from orchestrator.server.app import create_app
from orchestrator.server.settings import ServerSettings
from orchestrator.server.signatures import sign
from orchestrator.server.webhook_settings import WebhookSettings
from orchestrator.store.models import RolloutRequest, WebhookDelivery
from tests.server_fixtures import serving
from tests.webhook_helpers import (
    REPOSITORY,
    SECRET,
    commit_change,
    deliver,
    git,
    git_estate,
    push_payload,
    release_payload,
    workflow_run_payload,
)

REGISTRY_SECRET = b"registry-secret-also-never-logged-93ac"


@pytest.fixture
def estate(tmp_path: Path) -> Path:
    return git_estate(tmp_path / "estate")


@pytest.fixture
def server(tmp_path: Path, estate: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, object]]:
    monkeypatch.setenv("ORCHESTRATOR_STATE_DIR", str(tmp_path / "state"))
    settings = ServerSettings(
        root=estate,
        state_dir=tmp_path / "state",
        database_url=f"sqlite:///{tmp_path / 'state' / 'orchestrator.db'}",
        webhooks=WebhookSettings(
            github_secret=SECRET, registry_secret=REGISTRY_SECRET, github_repository=REPOSITORY
        ),
        job_threads=1,
    )
    app = create_app(settings)
    app.state.jobs.runner.stopping.set()  # nothing is driven here: the requests stay as recorded
    with serving(app) as base:
        yield base, app.state.sessions


def counts(sessions: object) -> tuple[int, int]:
    with sessions() as session:  # type: ignore[operator]
        deliveries = session.scalar(select(func.count()).select_from(WebhookDelivery))
        requests = session.scalar(select(func.count()).select_from(RolloutRequest))
    return deliveries, requests


def test_a_signed_push_to_the_default_branch_queues_the_changed_service(server, estate: Path) -> None:
    base, sessions = server
    sha = commit_change(estate, "services/api/VERSION", "1\n")
    response = deliver(base, push_payload(sha, paths=["services/api/VERSION", "README.md"]), delivery="d-1")
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["outcome"] == "queued"
    assert [(r["service"], r["environment"]) for r in body["requests"]] == [("api", "local")]
    with sessions() as session:
        request = session.scalars(select(RolloutRequest)).one()
        assert (request.git_commit, request.actor, request.event) == (sha, "github", "push")
        assert request.delivery.delivery_id == "d-1"


def test_templates_change_every_service_and_other_files_none(server, estate: Path) -> None:
    base, _ = server
    every = deliver(base, push_payload("a" * 40, paths=["templates/k8s/deployment.yaml.j2"]))
    assert sorted(r["service"] for r in every.json()["requests"]) == ["api", "frontend"]
    none = deliver(base, push_payload("b" * 40, paths=["docs/index.md"]))
    assert none.status_code == 202 and none.json()["outcome"] == "ignored"
    assert none.json()["reason"] == "no service's files changed"


@pytest.mark.parametrize(
    "signature",
    ["", "sha256=" + "0" * 64, sign(b"another secret", b"{}"), "sha1=abc"],
    ids=["missing", "zeros", "other-secret", "other-scheme"],
)
def test_a_bad_or_missing_signature_is_401_and_nothing_is_stored(server, signature: str) -> None:
    base, sessions = server
    response = deliver(base, push_payload("c" * 40, paths=["services/api/x"]), signature=signature)
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert counts(sessions) == (0, 0)


def test_malformed_json_is_400(server) -> None:
    base, sessions = server
    for body in (b"{not json", b"[1, 2]", b"\xff\xfe"):
        response = deliver(base, body)
        assert response.status_code == 400, response.text
        assert response.json()["status"] == 400
    assert counts(sessions) == (0, 0)


def test_a_body_over_one_mebibyte_is_413_declared_or_streamed(server) -> None:
    base, sessions = server
    big = b"{" + b" " * (1024 * 1024) + b"}"
    declared = deliver(base, big)
    assert declared.status_code == 413, declared.text

    def chunks() -> Iterator[bytes]:
        for _ in range(40):  # 2.5 MiB in chunks, no Content-Length: counted as it streams
            yield b" " * 65536

    streamed = httpx.post(
        f"{base}/webhooks/github",
        content=chunks(),
        headers={
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": "big",
            "X-Hub-Signature-256": sign(SECRET, b""),
        },
        timeout=30,
    )
    assert streamed.status_code == 413, streamed.text
    assert counts(sessions) == (0, 0)


def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_sent(server) -> None:
    base, _ = server
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(
            b"POST /webhooks/github HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 50000000\r\n\r\n{"
        )
        answer = connection.recv(4096).decode()  # answered without the other 49,999,999 bytes
    assert answer.startswith("HTTP/1.1 413"), answer


def test_an_unknown_repository_or_service_is_202_with_the_reason_logged(server, capsys) -> None:
    base, sessions = server
    configure_logging("info", json_output=True)
    other = deliver(base, push_payload("d" * 40, paths=["services/api/x"], repository="someone/else"))
    assert other.status_code == 202 and other.json()["outcome"] == "ignored"
    assert "is not 'addtocloud/platform'" in other.json()["reason"]
    unknown = deliver(base, push_payload("e" * 40, paths=["services/billing/main.go"]))
    assert unknown.status_code == 202 and unknown.json()["outcome"] == "ignored"
    assert "no pipeline names service 'billing'" in unknown.json()["reason"]
    branch = deliver(base, push_payload("f" * 40, paths=["services/api/x"], ref="refs/heads/feature"))
    assert "not the default branch" in branch.json()["reason"]
    logged = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    reasons = [entry.get("reason") or "" for entry in logged if entry.get("event") == "webhook_received"]
    assert any("someone/else" in r for r in reasons) and any("billing" in r for r in reasons), logged
    assert counts(sessions) == (3, 0)  # recorded as ignored, nothing queued


def test_a_replayed_delivery_is_200_and_queues_nothing_more(server, estate: Path) -> None:
    base, sessions = server
    payload = push_payload(
        commit_change(estate, "services/api/VERSION", "2\n"), paths=["services/api/VERSION"]
    )
    first = deliver(base, payload, delivery="same-id")
    again = deliver(base, payload, delivery="same-id")
    assert first.status_code == 202 and again.status_code == 200, again.text
    assert again.json()["outcome"] == "duplicate"
    assert counts(sessions) == (1, 1)


def test_ping_is_200(server) -> None:
    base, sessions = server
    response = deliver(base, {"zen": "Keep it logically awesome.", "hook_id": 1}, event="ping")
    assert response.status_code == 200 and response.json()["outcome"] == "ping"
    assert counts(sessions) == (1, 0)


def test_registry_notifications_deploy_the_service_built_from_the_repository(server) -> None:
    base, sessions = server
    digest = "sha256:" + "ab" * 32
    envelope = {
        "events": [
            {
                "id": str(uuid.uuid4()),
                "action": "push",
                "target": {
                    "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                    "repository": "addtocloud/api",
                    "digest": digest,
                    "tag": "v2",
                },
                "request": {"host": "registry.example.com"},
            }
        ]
    }
    body = json.dumps(envelope).encode()
    # Docker distribution sends a static header: the secret as a bearer token.
    response = httpx.post(
        f"{base}/webhooks/registry",
        content=body,
        headers={"Authorization": f"Bearer {REGISTRY_SECRET.decode()}"},
    )
    assert response.status_code == 202, response.text
    assert [r["service"] for r in response.json()["requests"]] == ["api"]
    generic = json.dumps({"repository": "addtocloud/frontend", "digest": "sha256:" + "cd" * 32}).encode()
    signed = httpx.post(
        f"{base}/webhooks/registry",
        content=generic,
        headers={"X-Registry-Signature-256": sign(REGISTRY_SECRET, generic)},
    )
    assert signed.status_code == 202 and [r["service"] for r in signed.json()["requests"]] == ["frontend"]
    bad = httpx.post(f"{base}/webhooks/registry", content=generic, headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
    with sessions() as session:
        request = session.scalars(select(RolloutRequest).where(RolloutRequest.service == "api")).one()
        assert (request.digest, request.built_repository) == (digest, "registry.example.com/addtocloud/api")


def test_secrets_and_signatures_never_reach_the_logs(server, estate: Path, capsys) -> None:
    base, _ = server
    configure_logging("debug", json_output=True)
    payload = push_payload(
        commit_change(estate, "services/api/VERSION", "3\n"), paths=["services/api/VERSION"]
    )
    body = json.dumps(payload).encode()
    signature = sign(SECRET, body)
    deliver(base, payload, delivery="logged-1")
    deliver(base, payload, delivery="logged-1")  # replay
    deliver(base, payload, signature="sha256=" + "1" * 64)  # bad signature
    deliver(base, b"{broken", delivery="logged-2")
    generic = json.dumps({"repository": "addtocloud/api", "digest": "sha256:" + "ef" * 32}).encode()
    httpx.post(
        f"{base}/webhooks/registry",
        content=generic,
        headers={"Authorization": f"Bearer {REGISTRY_SECRET.decode()}"},
    )
    httpx.post(f"{base}/webhooks/registry", content=generic, headers={"Authorization": "Bearer wrong-guess"})
    logs = capsys.readouterr().err
    assert "webhook_received" in logs and "webhook_refused" in logs  # the debug log was captured
    for secret in (SECRET.decode(), REGISTRY_SECRET.decode(), signature, signature.removeprefix("sha256=")):
        assert secret not in logs


def test_metrics_count_every_delivery_by_source_and_outcome(server, estate: Path) -> None:
    base, _ = server
    payload = push_payload(
        commit_change(estate, "services/api/VERSION", "3\n"), paths=["services/api/VERSION"]
    )
    assert deliver(base, payload, delivery="counted").status_code == 202  # queued
    assert deliver(base, payload, delivery="counted").status_code == 200  # duplicate
    assert deliver(base, push_payload("d" * 40, paths=["x"], repository="a/b")).status_code == 202  # ignored
    assert deliver(base, {"zen": "z", "hook_id": 1}, event="ping").status_code == 200
    assert deliver(base, b"{}", signature="sha256=" + "0" * 64).status_code == 401
    assert deliver(base, b"{not json").status_code == 400
    assert deliver(base, b"{" + b" " * (1024 * 1024) + b"}").status_code == 413
    registry = httpx.post(f"{base}/webhooks/registry", content=b"{}", timeout=30)  # no signature
    assert registry.status_code == 401

    text = httpx.get(f"{base}/metrics").text
    counted = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line.startswith("orchestrator_webhook_deliveries_total{")
    }
    assert len(counted) == 2 * 9  # every source and outcome, from zero (so increase() sees the first)
    assert {series: n for series, n in counted.items() if n} == {
        f'orchestrator_webhook_deliveries_total{{outcome="{outcome}",source="{source}"}}': 1.0
        for source, outcome in (
            ("github", "queued"),
            ("github", "duplicate"),
            ("github", "ignored"),
            ("github", "ping"),
            ("github", "unauthorized"),
            ("github", "malformed"),
            ("github", "too_large"),
            ("registry", "unauthorized"),
        )
    }


def test_a_successful_workflow_run_on_the_default_branch_queues_its_commit(server, estate: Path) -> None:
    base, sessions = server
    sha = commit_change(estate, "services/api/VERSION", "4\n")
    response = deliver(base, workflow_run_payload(sha), event="workflow_run", delivery="run-1")
    assert response.status_code == 202, response.text
    # Nothing was deployed yet: every service is new to its first environment.
    assert sorted((r["service"], r["environment"]) for r in response.json()["requests"]) == [
        ("api", "local"),
        ("frontend", "local"),
    ]
    with sessions() as session:
        request = session.scalars(select(RolloutRequest).where(RolloutRequest.service == "api")).one()
        assert (request.git_commit, request.actor, request.event) == (sha, "github", "workflow_run")
        assert request.delivery.delivery_id == "run-1"
    again = deliver(base, workflow_run_payload(sha), event="workflow_run", delivery="run-1")
    assert again.status_code == 200 and again.json()["outcome"] == "duplicate"
    assert counts(sessions) == (1, 2)


def test_workflow_runs_that_deploy_nothing_are_202_with_the_reason(server, estate: Path, capsys) -> None:
    base, sessions = server
    configure_logging("info", json_output=True)
    sha = commit_change(estate, "services/api/VERSION", "5\n")
    cases = {
        "failed": (workflow_run_payload(sha, conclusion="failure"), "concluded 'failure', not success"),
        "requested": (workflow_run_payload(sha, action="requested"), "action 'requested' is not handled"),
        "branch": (workflow_run_payload(sha, branch="feature"), "'feature' is not the default branch"),
        "fork": (
            workflow_run_payload(sha, head_repository="someone/platform"),
            "comes from 'someone/platform', not 'addtocloud/platform'",
        ),
        "unknown": (workflow_run_payload("9" * 40), "is not in the server's checkout"),
    }
    for name, (payload, reason) in cases.items():
        response = deliver(base, payload, event="workflow_run", delivery=f"run-{name}")
        assert response.status_code == 202, response.text
        assert response.json()["outcome"] == "ignored" and reason in response.json()["reason"], name
    logged = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    reasons = [entry.get("reason") or "" for entry in logged if entry.get("event") == "webhook_received"]
    assert all(any(reason in r for r in reasons) for _, reason in cases.values()), reasons
    assert counts(sessions) == (len(cases), 0)


def test_releases_that_promote_nothing_are_202_with_the_reason_logged(server, estate: Path, capsys) -> None:
    base, sessions = server
    configure_logging("info", json_output=True)
    sha = commit_change(estate, "services/api/VERSION", "6\n")
    git(estate, "tag", "-a", "v6.0.0", "-m", "six", sha)
    cases = {
        "unknown tag": (release_payload("v404"), "tag 'v404' is not in the server's checkout"),
        "bad tag": (release_payload("a..b"), "the release names no valid tag ('a..b')"),
        "created": (release_payload("v6.0.0", action="created"), "action 'created' is not handled"),
        # A known tag whose commit no rollout verified: nothing to promote, service by service.
        "unverified": (
            release_payload("v6.0.0"),
            f"tag 'v6.0.0' is commit {sha[:12]}: nothing to promote; api: no release at commit",
        ),
    }
    for name, (payload, reason) in cases.items():
        response = deliver(base, payload, event="release", delivery=f"release-{name}")
        assert response.status_code == 202, response.text
        assert response.json()["outcome"] == "ignored" and reason in response.json()["reason"], name
    logged = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    reasons = [entry.get("reason") or "" for entry in logged if entry.get("event") == "webhook_received"]
    assert all(any(reason in r for r in reasons) for _, reason in cases.values()), reasons
    assert counts(sessions) == (len(cases), 0)
