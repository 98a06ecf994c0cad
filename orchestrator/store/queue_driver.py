"""pgqueuer's driver for a worker: its queries on one psycopg connection, its LISTEN on another.

psycopg holds a connection's lock for the whole of a `notifies()` wait, and pgqueuer's `PsycopgDriver`
listens on the connection its queries use, waiting up to a second at a time (`notifies(timeout=1.0)`) and
taking the lock again as soon as it gives it up. Every query of the worker's queue manager (the dequeue
that a NOTIFY asks for, heartbeats, job statuses, retries) then waited for that watcher: an idle worker
picked a new job 0.5 to 1 s after it was queued (`benchmarks/fleet.py`'s pickup latency). Here the queries
go through one `PsycopgDriver` and the listening through another, each on its own connection, so a
dequeue starts as soon as the NOTIFY that asks for it arrives.

The class keeps to pgqueuer's `Driver` protocol (and `ListenerRemover`) by delegation; nothing of
pgqueuer's is replaced or patched.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Self

if TYPE_CHECKING:
    import psycopg
    from pgqueuer import PsycopgDriver
    from pgqueuer.ports.driver import NotifyCallback, TaskManagerPort


class ListeningApartDriver:
    """Queries (`fetch`, `execute`, `notify`) on `queries`; `add_listener` and `remove_listener` on
    `listening`: two `PsycopgDriver`s on two autocommit connections."""

    def __init__(self, queries: PsycopgDriver, listening: PsycopgDriver) -> None:
        self._queries, self._listening = queries, listening

    async def fetch(self, query: str, *args: object) -> list[dict[str, object]]:
        return await self._queries.fetch(query, *args)

    async def execute(self, query: str, *args: object) -> str:
        return await self._queries.execute(query, *args)

    async def notify(self, channel: str, payload: str) -> None:
        await self._queries.notify(channel, payload)

    async def add_listener(self, channel: str, callback: NotifyCallback) -> None:
        await self._listening.add_listener(channel, callback)

    async def remove_listener(self, channel: str, callback: NotifyCallback) -> None:
        await self._listening.remove_listener(channel, callback)

    @property
    def shutdown(self) -> asyncio.Event:
        # The listening driver's: its watcher is the background work that must stop.
        return self._listening.shutdown

    @property
    def tm(self) -> TaskManagerPort:
        return self._listening.tm

    async def __aenter__(self) -> Self:
        await self._queries.__aenter__()
        await self._listening.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            await self._listening.__aexit__(*exc)
        finally:
            await self._queries.__aexit__(*exc)


async def connect(conninfo: str) -> tuple[ListeningApartDriver, list[psycopg.AsyncConnection]]:
    """The driver, on two new autocommit connections to `conninfo` (the caller closes them)."""
    import psycopg
    from pgqueuer import PsycopgDriver

    connections: list[psycopg.AsyncConnection] = []
    try:
        for _ in range(2):
            connections.append(await psycopg.AsyncConnection.connect(conninfo, autocommit=True))
    except BaseException:
        for connection in connections:
            await connection.close()
        raise
    queries, listening = connections
    return ListeningApartDriver(PsycopgDriver(queries), PsycopgDriver(listening)), connections
