"""Logging: structlog, readable in a terminal and JSON lines otherwise, on stderr; secrets redacted.

Redaction is by key name (token, password, secret, authorization, …) and by value shape (bearer tokens,
URLs with credentials), so a credential that reaches a log call by accident still never reaches the log.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

SECRET_KEYS = re.compile(r"(token|password|passwd|secret|authorization|api[_-]?key|credential|cookie)", re.I)
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+")
_URL_CREDENTIALS = re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://)([^/@\s:]+):([^/@\s]+)@")
REDACTED = "[redacted]"


def redact_value(value: Any) -> Any:
    if isinstance(value, str):
        value = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", value)
        return _URL_CREDENTIALS.sub(lambda m: f"{m.group(1)}{m.group(2)}:{REDACTED}@", value)
    if isinstance(value, dict):
        return {k: REDACTED if SECRET_KEYS.search(str(k)) else redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact_value(v) for v in value)
    return value


def redact_secrets(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event_dict):
        if SECRET_KEYS.search(key):
            event_dict[key] = REDACTED
        else:
            event_dict[key] = redact_value(event_dict[key])
    return event_dict


def _current_stderr_logger(*_: Any) -> structlog.PrintLogger:
    return structlog.PrintLogger(file=sys.stderr)


def configure_logging(level: str | None = None, *, json_output: bool | None = None) -> None:
    """Call once per process; ORCHESTRATOR_LOG_LEVEL and ORCHESTRATOR_LOG_FORMAT (console|json) apply."""
    name = (level or os.environ.get("ORCHESTRATOR_LOG_LEVEL") or "warning").upper()
    numeric = logging.getLevelNamesMapping().get(name, logging.WARNING)
    if json_output is None:
        fmt = os.environ.get("ORCHESTRATOR_LOG_FORMAT")
        json_output = fmt == "json" if fmt else not sys.stderr.isatty()
    renderer: Any = (
        structlog.processors.JSONRenderer() if json_output else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_secrets,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        # Whatever sys.stderr is when a line is written (not when logging was set up): a caller that swaps
        # stderr (a test runner, an embedding program) keeps getting its logs, and never a closed stream.
        logger_factory=_current_stderr_logger,
        cache_logger_on_first_use=False,
    )
    # Cloud SDKs log multi-line warnings of their own (azure.identity on a failed credential); our errors
    # already say what failed, in one line.
    for noisy in ("azure", "google", "botocore", "urllib3", "kubernetes"):
        logging.getLogger(noisy).setLevel(max(numeric, logging.ERROR))
    logging.basicConfig(
        level=max(numeric, logging.WARNING), stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
