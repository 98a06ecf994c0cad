"""Retry a read-modify-write that lost a race with another manager (409 Conflict).

A write guarded by a resourceVersion is refused with 409 when someone wrote the object after we read it.
Asking again with the same body would be refused again: the caller's `attempt` must read the object
afresh and re-apply only its own change on top of whatever the other manager wrote. This module only
decides when to try again and how long to wait; each caller says what one attempt is.

The first retry goes at once (the usual cause is a copy we remembered from our last write, now stale);
later ones wait a short, jittered, growing time so two managers writing in a loop stop colliding.
A conflict that asking again cannot cure (server-side apply without force refusing to take a field
another manager owns, `FieldManagerConflict`) is never retried.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from tenacity import Retrying, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_exponential_jitter

from orchestrator.errors import OrchestratorError
from orchestrator.kube.client import KubeApiError

T = TypeVar("T")

CONFLICT_ATTEMPTS = 8  # one try and seven retries: about 0.6 s of waiting at most


class ConflictError(OrchestratorError):
    """Another manager kept writing the object; every attempt of ours was refused."""


def is_retryable_conflict(exc: BaseException) -> bool:
    if not isinstance(exc, KubeApiError) or exc.status != 409:
        return False
    causes = (exc.details or {}).get("causes") if isinstance(exc.details, dict) else None
    return not any(isinstance(c, dict) and c.get("reason") == "FieldManagerConflict" for c in causes or [])


# The retries after a first attempt was refused: the first at once, then waits growing from 10 ms. One
# Retrying for the process: tenacity keeps a call's attempt count in thread-local state, so threads share it.
_RETRYING = Retrying(
    retry=retry_if_exception(is_retryable_conflict),
    stop=stop_after_attempt(CONFLICT_ATTEMPTS - 1),
    wait=wait_exponential_jitter(multiplier=0.01, max=0.25, jitter=0.02),
    reraise=True,
)


def retry_conflicts(attempt: Callable[[], T], *, cluster: str, what: str) -> T:
    """Run `attempt` (read afresh, change, write) until it is not refused with a 409, a bounded number
    of times. `what` (`VirtualService/api`) and `cluster` name the object when we give up."""
    try:
        return attempt()  # the usual case, outside tenacity: a step's one request costs nothing more
    except KubeApiError as exc:
        if not is_retryable_conflict(exc):
            raise
    try:
        return _RETRYING(attempt)
    except KubeApiError as exc:
        if not is_retryable_conflict(exc):
            raise
        raise ConflictError(
            f"cluster {cluster}: {what} kept changing underneath us "
            f"({CONFLICT_ATTEMPTS} conflicting writes in a row): {exc}"
        ) from None
