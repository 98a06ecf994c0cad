"""Secrets never reach the log: by key name, by bearer/basic credentials in values, by passwords in URLs."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr

import structlog

from orchestrator.logs import REDACTED, configure_logging, redact_secrets


def test_secret_keys_and_credential_shapes_are_redacted() -> None:
    event = redact_secrets(
        None,
        "info",
        {
            "event": "calling",
            "api_token": "abc123",
            "headers": {"Authorization": "Bearer eyJhbGciOi", "Accept": "application/json"},
            "url": "postgresql://deployer:hunter2@db.internal:5432/orchestrator",
            "note": "sent Basic dXNlcjpwYXNz to the registry",
        },
    )
    assert event["api_token"] == REDACTED
    assert event["headers"] == {"Authorization": REDACTED, "Accept": "application/json"}
    assert event["url"] == f"postgresql://deployer:{REDACTED}@db.internal:5432/orchestrator"
    assert "dXNlcjpwYXNz" not in event["note"]


def test_json_logs_on_stderr_carry_no_secret() -> None:
    buffer = io.StringIO()
    try:
        configure_logging("info", json_output=True)
        with redirect_stderr(buffer):
            structlog.get_logger("test").info("login", password="s3cret", user="ana")
    finally:
        structlog.reset_defaults()
    line = json.loads(buffer.getvalue().strip().splitlines()[-1])
    assert line["password"] == REDACTED and line["user"] == "ana" and line["event"] == "login"
