"""Failed sign-ins, limited per email and per client address: what keeps `/api/v1/login` and the dashboard's
sign-in form from being a password-guessing oracle.

Only failures count (a user who signs in is never held back by their own successes), in a moving window
(`limits`, in this process's memory: with several server processes each keeps its own count). Past the
limit for either key, an attempt is refused before its password is checked, with 429 and `Retry-After`,
whether or not the email belongs to a user, so the refusal says nothing about which accounts exist. The
limit is `ORCHESTRATOR_LOGIN_LIMIT` in `limits`' notation (default `10 per 15 minutes`).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from typing import TypeVar

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from orchestrator.errors import ConfigError, OrchestratorError
from orchestrator.identity.signin import LoginFailedError

T = TypeVar("T")

LOGIN_LIMIT_ENV = "ORCHESTRATOR_LOGIN_LIMIT"
DEFAULT_LIMIT = "10 per 15 minutes"


class LoginThrottledError(OrchestratorError):
    """Too many failed sign-ins for this email or from this address: not checked, try again later."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"too many failed sign-ins for this email or from this address; try again in {retry_after} s"
        )
        self.retry_after = retry_after


def configured_limit() -> RateLimitItem:
    text = os.environ.get(LOGIN_LIMIT_ENV, "").strip() or DEFAULT_LIMIT
    try:
        return parse(text)
    except ValueError:
        raise ConfigError(
            f"{LOGIN_LIMIT_ENV}={text!r} is not a limit such as {DEFAULT_LIMIT!r} (limits' notation)"
        ) from None


class LoginLimiter:
    def __init__(self, limit: RateLimitItem) -> None:
        self.limit = limit
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def attempt(self, email: str, client: str | None, sign_in: Callable[[], T]) -> T:
        """`sign_in()` unless the limit is passed (LoginThrottledError, nothing checked); its
        LoginFailedError counts against both keys and is raised on."""
        self.check(email, client)
        try:
            return sign_in()
        except LoginFailedError:
            self.failed(email, client)
            raise

    def check(self, email: str, client: str | None) -> None:
        """Refuse (LoginThrottledError) when either key has used up its failures."""
        for key in self._keys(email, client):
            if not self._limiter.test(self.limit, key):
                reset = self._limiter.get_window_stats(self.limit, key).reset_time
                raise LoginThrottledError(max(1, math.ceil(reset - time.time())))

    def failed(self, email: str, client: str | None) -> None:
        for key in self._keys(email, client):
            self._limiter.hit(self.limit, key)

    @staticmethod
    def _keys(email: str, client: str | None) -> list[str]:
        keys = [f"email:{email.strip().lower()}"]
        if client:
            keys.append(f"client:{client}")
        return keys
