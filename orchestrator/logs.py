"""Logging: structlog, readable in a terminal and JSON lines otherwise, on stderr; secrets redacted.

Redaction is by key name (token, password, secret, authorization, …) and by value shape (bearer tokens,
URLs with credentials), so a credential that reaches a log call by accident still never reaches the log.

Every module logs through `get_logger` here, never through structlog itself: importing structlog costs
about 0.1 s (it loads its console renderer, which loads rich, and asyncio), a fifth of a short command
such as `render`. A logger made here imports structlog for the first record at or above the configured
level, so a command that writes no log line never imports it; `configure_logging` keeps structlog's
configuration until then (applied at once if structlog is already loaded).
"""

from __future__ import annotations

import contextvars
import logging
import os
import re
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

T = TypeVar("T")

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


def _current_stderr_logger(*_: Any) -> Any:
    import structlog

    return structlog.PrintLogger(file=sys.stderr)


# What `bind_context` added, merged into every record of this thread or task (as structlog.contextvars
# would, without importing structlog to bind).
_bound: ContextVar[Mapping[str, Any] | None] = ContextVar("orchestrator_log_context", default=None)


def bind_context(**values: Any) -> None:
    """Add `values` to every later record of this thread or task (the acting user, for one)."""
    _bind(values)


@contextmanager
def log_context(**values: Any) -> Iterator[None]:
    """Add `values` to the records of this thread or task until the block ends (a rollout's deployment)."""
    token = _bind(values)
    try:
        yield
    finally:
        _bound.reset(token)


def carried(function: Callable[..., T]) -> Callable[..., T]:
    """`function`, to run on another thread with the log context bound here (new threads start with an
    empty one): a rollout's gates and per-cluster calls log with its deployment and acting user. Each call
    runs in a copy of the context, so calls on several threads at once do not share one."""
    context = contextvars.copy_context()
    return lambda *args, **kwargs: context.copy().run(function, *args, **kwargs)


def _bind(values: Mapping[str, Any]) -> contextvars.Token[Mapping[str, Any] | None]:
    return _bound.set({**(_bound.get() or {}), **values})


def merge_bound_context(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in (_bound.get() or {}).items():
        event_dict.setdefault(key, value)
    return event_dict


# Each method's level (`exception` is an error with its traceback).
_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "exception": logging.ERROR,
}
# None until configure_logging: then every record goes to structlog, as structlog alone would have it.
_threshold: int | None = None
# JSON lines or not, of a configure_logging that structlog has not had yet (its level is `_threshold`).
_pending_json: bool | None = None
_configuring = threading.Lock()


def configure_logging(level: str | None = None, *, json_output: bool | None = None) -> None:
    """Call once per process; ORCHESTRATOR_LOG_LEVEL and ORCHESTRATOR_LOG_FORMAT (console|json) apply."""
    global _threshold, _pending_json
    name = (level or os.environ.get("ORCHESTRATOR_LOG_LEVEL") or "warning").upper()
    numeric = logging.getLevelNamesMapping().get(name, logging.WARNING)
    if json_output is None:
        fmt = os.environ.get("ORCHESTRATOR_LOG_FORMAT")
        json_output = fmt == "json" if fmt else not sys.stderr.isatty()
    with _configuring:
        _threshold = numeric
        _pending_json = json_output
        if "structlog" in sys.modules:
            _configure_structlog()
    # Cloud SDKs log multi-line warnings of their own (azure.identity on a failed credential); our errors
    # already say what failed, in one line.
    for noisy in ("azure", "google", "botocore", "urllib3", "kubernetes"):
        logging.getLogger(noisy).setLevel(max(numeric, logging.ERROR))
    logging.basicConfig(
        level=max(numeric, logging.WARNING), stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )


def _configure_structlog() -> None:
    """Hand structlog the configuration configure_logging kept (under `_configuring`)."""
    global _pending_json
    import structlog

    if _pending_json is None or _threshold is None:
        return
    json_output, _pending_json = _pending_json, None
    renderer: Any = (
        structlog.processors.JSONRenderer() if json_output else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            merge_bound_context,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_secrets,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_threshold),
        # Whatever sys.stderr is when a line is written (not when logging was set up): a caller that swaps
        # stderr (a test runner, an embedding program) keeps getting its logs, and never a closed stream.
        logger_factory=_current_stderr_logger,
        cache_logger_on_first_use=False,
    )


class Logger:
    """structlog's logger for `name`, made (and structlog imported) for the first record that passes the
    configured level. Its methods are structlog's: an event name, then key-value pairs."""

    __slots__ = ("_logger", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self._logger: Any = None

    def _structlog(self) -> Any:
        if self._logger is None:
            import structlog

            with _configuring:
                _configure_structlog()
            self._logger = structlog.get_logger(self.name)
        return self._logger

    def _emit(self, method: str, event: str, values: dict[str, Any]) -> None:
        if _threshold is not None and _LEVELS[method] < _threshold:
            return
        getattr(self._structlog(), method)(event, **values)

    def debug(self, event: str, **values: Any) -> None:
        self._emit("debug", event, values)

    def info(self, event: str, **values: Any) -> None:
        self._emit("info", event, values)

    def warning(self, event: str, **values: Any) -> None:
        self._emit("warning", event, values)

    def error(self, event: str, **values: Any) -> None:
        self._emit("error", event, values)

    def exception(self, event: str, **values: Any) -> None:
        """An error with the exception being handled (call it in an `except` block)."""
        self._emit("exception", event, values)


def get_logger(name: str) -> Logger:
    return Logger(name)
