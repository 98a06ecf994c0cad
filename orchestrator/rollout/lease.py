"""The engine's claim on the deployment it drives (`store/leases.py`), renewed on a timer.

A heartbeat every few seconds, an expiry of about thirty: a driver killed with SIGKILL holds a deployment
for at most the expiry, and the per-step path gains no write. The timer is a daemon thread for real runs; a
test on a fake clock turns it off and the engine renews on its waits instead (`beat_if_due`).
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import Engine

from orchestrator.errors import OrchestratorError
from orchestrator.store import leases
from orchestrator.store.leases import LeaseHolder

LEASE_SECONDS = 30.0
HEARTBEAT_SECONDS = 5.0


def new_owner() -> str:
    """Who drives, as people read it: host, process, and a nonce (two engines in one process differ)."""
    return f"{socket.gethostname()}:pid {os.getpid()}:{uuid.uuid4().hex[:8]}"


class LeaseHeldError(OrchestratorError):
    """Another process drives the deployment."""

    def __init__(self, deployment_id: uuid.UUID, holder: LeaseHolder) -> None:
        until = holder.expires_at.isoformat() if holder.expires_at else "?"
        super().__init__(
            f"deployment {deployment_id} is being driven by {holder.owner} (lease live until {until}); "
            "wait for it to stop, or for its lease to expire if that process is gone"
        )
        self.holder = holder


class LeaseLostError(OrchestratorError):
    """Our lease expired and another driver took the deployment over: this engine must stop."""


class LeaseSurrenderedError(LeaseLostError):
    """This engine was told to stop driving (`RolloutEngine.hand_back`): it gives the lease back."""


class Lease:
    def __init__(
        self,
        database: Engine,
        deployment_id: uuid.UUID,
        owner: str,
        now: Callable[[], float],
        *,
        seconds: float = LEASE_SECONDS,
        heartbeat: float = HEARTBEAT_SECONDS,
        thread: bool = True,
    ) -> None:
        self.database = database
        self.deployment_id = deployment_id
        self.owner = owner
        self._now = now
        self.seconds = seconds
        self.heartbeat = heartbeat
        self.lost = False
        self.surrendered = False  # told to stop: the next check raises, and the lease is given back
        self._last_beat = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._use_thread = thread

    def _moment(self, offset: float = 0.0) -> datetime:
        return datetime.fromtimestamp(self._now() + offset, UTC)

    def take(self) -> None:
        """Ours now, or LeaseHeldError naming the live holder."""
        with self.database.begin() as connection:
            holder = leases.take(
                connection,
                self.deployment_id,
                self.owner,
                now=self._moment(),
                until=self._moment(self.seconds),
            )
        if holder is not None:
            raise LeaseHeldError(self.deployment_id, holder)
        self._last_beat = self._now()
        if self._use_thread and self._thread is None:
            self._thread = threading.Thread(target=self._beat_forever, name="lease-heartbeat", daemon=True)
            self._thread.start()

    def beat_if_due(self) -> None:
        if self.lost or self._now() - self._last_beat < self.heartbeat:
            return
        with self.database.begin() as connection:
            kept = leases.renew(
                connection,
                self.deployment_id,
                self.owner,
                now=self._moment(),
                until=self._moment(self.seconds),
            )
        self._last_beat = self._now()
        self.lost = not kept

    def surrender(self) -> None:
        self.surrendered = True

    def check(self) -> None:
        if self.surrendered:
            raise LeaseSurrenderedError(f"deployment {self.deployment_id}: handed back, to be resumed")
        if self.lost:
            raise LeaseLostError(
                f"deployment {self.deployment_id}: this engine's lease expired and another driver took over"
            )

    def _beat_forever(self) -> None:
        while not self._stop.wait(self.heartbeat):
            try:
                self.beat_if_due()
            except Exception:
                continue

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        with self.database.begin() as connection:
            leases.give_back(connection, self.deployment_id, self.owner)


def live_holder(database: Engine, deployment_id: uuid.UUID, now: float) -> LeaseHolder | None:
    with database.begin() as connection:
        return leases.live_holder(connection, deployment_id, now=datetime.fromtimestamp(now, UTC))
