"""Notifications delivered from the audit trail: Slack's Block Kit message naming the failing gate, signed
webhooks, retries with backoff on a fake clock, endpoints that fail, answer late or not at all, triggers,
and several notifiers tailing one store."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from orchestrator.config import Project
from orchestrator.errors import ConfigError
from orchestrator.notify.notifier import RetryPolicy
from orchestrator.runtime import open_store
from orchestrator.store import db
from orchestrator.store import repository as repo
from orchestrator.store.models import Phase
from tests.fakes.receiver import Receiver
from tests.integration.notification_fixtures import (
    deliveries,
    estate_with,
    fake_clock,
    notifier,
    pump,
    record_rollout,
)


@pytest.fixture
def sessions(tmp_path: Path) -> sessionmaker[Session]:
    return open_store(f"sqlite:///{tmp_path / 'state.db'}")


def slack_estate(
    tmp_path: Path, url: str, triggers: str = "[on-started, on-rolled-back, on-succeeded]"
) -> Project:
    return estate_with(
        tmp_path / "estate",
        f"notifications:\n  - name: team\n    type: slack\n    url: {url}\n    triggers: {triggers}\n",
    )


def text_of(message: dict) -> str:
    return json.dumps(message["blocks"])


def test_a_rollback_reaches_slack_on_the_fourth_try_naming_the_failing_gate(
    tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    with Receiver(answers=[500, 500, 500]) as slack:
        project = slack_estate(tmp_path, slack.url, "[on-rolled-back]")
        deployment_id = record_rollout(sessions, Phase.ROLLED_BACK, gate_value=0.7)
        clock = fake_clock()
        tailer = notifier(project, sessions, clock)
        started = clock.now()
        pump(tailer, clock, seconds=20)

    assert [r.status for r in slack.received] == [500, 500, 500, 200]
    message = slack.delivered[0].json()
    assert "request-success-rate" in message["text"] and "0.7" in message["text"]
    blocks = text_of(message)
    assert "*Failing gate*" in blocks and "`request-success-rate` = *0.7*" in blocks
    for named in ("api", "local", "registry.addtocloud.local/addtocloud/api:c0ffeec", "dev@addtocloud.tech"):
        assert named in blocks
    assert "RolledBack" in blocks
    assert f"https://orchestrator.test/api/v1/deployments/{deployment_id}" in blocks
    [row] = deliveries(sessions, deployment_id)
    assert (row["status"], row["attempts"], row["trigger"]) == ("delivered", 4, "on-rolled-back")
    # Backoff: tries at 0, 1, 3 and 7 s (waits of 1, 2 and 4 s), on the fake clock.
    assert row["delivered_at"].timestamp() - started == pytest.approx(7.0, abs=0.6)
    with sessions() as session:
        assert repo.get_deployment(session, deployment_id).phase == Phase.ROLLED_BACK.value


def test_an_unreachable_endpoint_is_recorded_failed_after_the_last_try(
    tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/services/T000/B000/secretpart"
    project = slack_estate(tmp_path, url, "[on-rolled-back]")
    deployment_id = record_rollout(sessions, Phase.ROLLED_BACK, gate_value=0.5)
    clock = fake_clock()
    tailer = notifier(project, sessions, clock)
    pump(tailer, clock, seconds=120, step=2)
    [row] = deliveries(sessions, deployment_id)
    assert (row["status"], row["attempts"]) == ("failed", 6)
    assert row["last_error"].startswith("slack:team: unreachable")
    assert "secretpart" not in row["last_error"] and str(port) not in row["last_error"]


def test_an_endpoint_that_does_not_answer_in_time_is_retried_then_failed(
    tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    with Receiver(delay=1.5) as slow:
        project = slack_estate(tmp_path, slow.url, "[on-rolled-back]")
        deployment_id = record_rollout(sessions, Phase.ROLLED_BACK)
        clock = fake_clock()
        tailer = notifier(project, sessions, clock, timeout=0.3, retry=RetryPolicy(2, 1.0, 1.0))
        pump(tailer, clock, seconds=5)
        assert len(slow.received) == 2
    [row] = deliveries(sessions, deployment_id)
    assert (row["status"], row["attempts"], row["last_error"]) == (
        "failed",
        2,
        "slack:team: no answer within 0.3s",
    )


def test_a_generic_webhook_is_signed_with_hmac_sha256_of_the_raw_body(
    tmp_path: Path, sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLUX_HMAC", "s3cr3t-key")
    with Receiver() as flux:
        monkeypatch.setenv("FLUX_RECEIVER_URL", flux.url)
        project = estate_with(
            tmp_path / "estate",
            "notifications:\n  - name: flux\n    type: webhook\n    urlEnv: FLUX_RECEIVER_URL\n"
            "    secretEnv: FLUX_HMAC\n    triggers: [on-started, on-succeeded]\n",
        )
        deployment_id = record_rollout(sessions, Phase.SUCCEEDED)
        clock = fake_clock()
        pump(notifier(project, sessions, clock), clock, seconds=1)
    assert len(flux.delivered) == 2
    for received in flux.delivered:
        expected = "sha256=" + hmac.new(b"s3cr3t-key", received.body, hashlib.sha256).hexdigest()
        assert received.headers["x-signature"] == expected
        assert "s3cr3t" not in received.body.decode()
    started, succeeded = (r.json() for r in flux.delivered)
    assert (started["trigger"], succeeded["trigger"]) == ("on-started", "on-succeeded")
    assert succeeded["deployment"]["id"] == str(deployment_id)
    assert succeeded["change"] == {**succeeded["change"], "from": "Progressing", "to": "Succeeded"}
    assert succeeded["gate"] is None


def test_a_missing_secret_variable_is_a_recorded_failure_not_an_unsigned_message(
    tmp_path: Path, sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NOT_SET_HMAC", raising=False)
    with Receiver() as flux:
        project = estate_with(
            tmp_path / "estate",
            f"notifications:\n  - name: flux\n    type: webhook\n    url: {flux.url}\n"
            "    secretEnv: NOT_SET_HMAC\n    triggers: [on-succeeded]\n",
        )
        deployment_id = record_rollout(sessions, Phase.SUCCEEDED)
        clock = fake_clock()
        pump(notifier(project, sessions, clock, retry=RetryPolicy(1, 1.0, 1.0)), clock, seconds=1)
        assert flux.received == []
    [row] = deliveries(sessions, deployment_id)
    assert (row["status"], row["last_error"]) == (
        "failed",
        "webhook:flux: the variable NOT_SET_HMAC is not set",
    )


def test_only_the_triggers_a_destination_asks_for_are_sent(
    tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    with Receiver() as slack:
        project = slack_estate(tmp_path, slack.url, "[on-rolled-back, on-failed]")
        succeeded = record_rollout(sessions, Phase.SUCCEEDED, commit="1" * 40)
        failed = record_rollout(sessions, Phase.FAILED, commit="2" * 40)
        clock = fake_clock()
        pump(notifier(project, sessions, clock), clock, seconds=1)
    assert deliveries(sessions, succeeded) == []
    assert [row["trigger"] for row in deliveries(sessions, failed)] == ["on-failed"]
    assert len(slack.delivered) == 1 and "failed" in slack.delivered[0].json()["text"]


def test_several_notifiers_on_one_store_send_each_message_once(tmp_path: Path, each_backend_url: str) -> None:
    db.upgrade(each_backend_url)
    sessions = open_store(each_backend_url)
    with Receiver() as slack:
        project = slack_estate(tmp_path, slack.url)
        clock = fake_clock()
        tailers = [notifier(project, sessions, clock) for _ in range(3)]
        for tailer in tailers:
            tailer.start()
        ids = [record_rollout(sessions, Phase.SUCCEEDED, commit=f"{n}" * 40) for n in range(3, 6)]
        for tailer in tailers:
            tailer.stop(flush_seconds=3)
    assert len(slack.delivered) == 6  # on-started and on-succeeded for each of the three
    for deployment_id in ids:
        assert [(r["trigger"], r["status"], r["attempts"]) for r in deliveries(sessions, deployment_id)] == [
            ("on-started", "delivered", 1),
            ("on-succeeded", "delivered", 1),
        ]


def test_history_from_before_notifications_is_not_announced(
    tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    """Migration 0006 starts the cursor at the newest event; a later migration run does not move it back."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    db.upgrade(url, "0004")
    engine = db.make_engine(url)
    old = record_rollout(sessionmaker(engine), Phase.SUCCEEDED, commit="6" * 40)
    engine.dispose()
    db.upgrade(url)
    upgraded = open_store(url)
    with Receiver() as slack:
        project = slack_estate(tmp_path, slack.url)
        new = record_rollout(upgraded, Phase.SUCCEEDED, commit="7" * 40)
        clock = fake_clock()
        pump(notifier(project, upgraded, clock), clock, seconds=1)
    assert deliveries(upgraded, old) == []
    assert len(deliveries(upgraded, new)) == 2 and len(slack.delivered) == 2


@pytest.mark.parametrize(
    ("entry", "complaint"),
    [
        (
            "{name: team, type: slack, url: 'https://hooks.example/x', triggers: [on-deployed]}",
            "unknown trigger",
        ),
        ("{name: team, type: slack}", "give exactly one of url and urlEnv"),
        (
            "{name: team, type: slack, url: 'https://x', secretEnv: K}",
            "secretEnv signs generic webhooks only",
        ),
        ("{name: team, type: teams, url: 'https://x'}", "type"),
    ],
)
def test_bad_notification_settings_are_refused_naming_the_key(
    tmp_path: Path, entry: str, complaint: str
) -> None:
    project = estate_with(tmp_path / "estate", f"notifications:\n  - {entry}\n")
    with pytest.raises(ConfigError) as caught:
        project.environment("local")
    assert complaint in str(caught.value)
    assert "environments/local.yaml" in str(caught.value) and "notifications[0]" in str(caught.value)
