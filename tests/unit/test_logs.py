"""Secrets never reach the log: by key name, by bearer/basic credentials in values, by passwords in URLs."""

from __future__ import annotations

import contextvars
import io
import json
import subprocess
import sys
from contextlib import redirect_stderr

import structlog

from orchestrator.logs import REDACTED, bind_context, configure_logging, get_logger, redact_secrets


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
            get_logger("test").info("login", password="s3cret", user="ana")
    finally:
        structlog.reset_defaults()
    line = json.loads(buffer.getvalue().strip().splitlines()[-1])
    assert line["password"] == REDACTED and line["user"] == "ana" and line["event"] == "login"


def test_bound_context_reaches_every_later_record() -> None:
    buffer = io.StringIO()

    def command() -> None:
        bind_context(user="ana@example.com", role="deployer")
        get_logger("test").warning("deploy refused", service="api")

    try:
        configure_logging("info", json_output=True)
        with redirect_stderr(buffer):
            contextvars.copy_context().run(command)  # the binding ends with the copy
    finally:
        structlog.reset_defaults()
    line = json.loads(buffer.getvalue().strip().splitlines()[-1])
    assert (line["user"], line["role"], line["service"]) == ("ana@example.com", "deployer", "api")


# A fresh process: the level decides whether structlog is imported at all (it costs about 0.1 s).
LAZY_PROBE = """
import sys
from orchestrator.logs import configure_logging, get_logger
configure_logging("warning", json_output=True)
log = get_logger("probe")
log.debug("not written")
log.info("not written either")
print("structlog" in sys.modules)
log.warning("written", api_token="abc123", cluster="aws")
print("structlog" in sys.modules)
"""


def test_structlog_is_imported_for_the_first_record_that_passes_the_level() -> None:
    result = subprocess.run([sys.executable, "-c", LAZY_PROBE], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "True"]
    lines = [json.loads(line) for line in result.stderr.strip().splitlines()]
    assert [(line["event"], line["level"]) for line in lines] == [("written", "warning")]
    assert lines[0]["api_token"] == REDACTED and lines[0]["cluster"] == "aws"


def test_a_log_context_reaches_the_threads_a_rollout_starts_and_ends_with_its_block() -> None:
    """What a rollout binds (its deployment, the acting user) is on the records of the threads it runs its
    clusters and gates on (`carried`), including several at once, and gone once its block ends."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from orchestrator.logs import carried, log_context

    buffer = io.StringIO()
    ready = threading.Barrier(3)

    def gate(cluster: str) -> None:
        ready.wait(timeout=10)  # three calls of one carried function run at the same time
        get_logger("gate").warning("metric completed", cluster=cluster)

    def command() -> None:
        bind_context(user="ana@example.com")
        with log_context(deployment="d-1"):
            with ThreadPoolExecutor(max_workers=3) as pool:
                list(pool.map(carried(gate), ["aws", "azure", "gcp"]))
            plain = threading.Thread(target=lambda: get_logger("t").warning("no context carried"))
            plain.start()
            plain.join()
        get_logger("engine").warning("after the rollout")

    try:
        configure_logging("info", json_output=True)
        with redirect_stderr(buffer):
            contextvars.copy_context().run(command)
    finally:
        structlog.reset_defaults()
    lines = [json.loads(line) for line in buffer.getvalue().strip().splitlines()]
    gates = sorted((line["cluster"], line.get("deployment"), line.get("user")) for line in lines[:3])
    assert gates == [(c, "d-1", "ana@example.com") for c in ("aws", "azure", "gcp")]
    assert "deployment" not in lines[3] and "user" not in lines[3]  # a thread not carried starts empty
    assert lines[4]["event"] == "after the rollout" and "deployment" not in lines[4]
    assert lines[4]["user"] == "ana@example.com"
