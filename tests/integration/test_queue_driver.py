"""The worker's pgqueuer driver on real Postgres: queries on one connection, LISTEN on another."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

import pytest

from orchestrator.store import queue, queue_driver

pytestmark = pytest.mark.postgres

CHANNEL = "orchestrator_test_driver"


def test_queries_do_not_wait_for_the_listener_and_notifies_arrive(postgres_url: str) -> None:
    async def scenario() -> None:
        driver, (queries, listening) = await queue_driver.connect(queue.conninfo(postgres_url))
        try:
            received: asyncio.Queue[str | bytes | bytearray] = asyncio.Queue()
            async with driver:
                await driver.add_listener(CHANNEL, received.put_nowait)
                # pgqueuer's watcher waits in `notifies()`, holding the listening connection's lock.
                for _ in range(500):
                    if listening.lock.locked():
                        break
                    await asyncio.sleep(0.01)
                assert listening.lock.locked()
                # A query meanwhile runs on the other connection (sharing one, it would wait for the
                # watcher's one-second timeout first).
                rows = await driver.fetch("SELECT pg_backend_pid() AS pid")
                assert rows[0]["pid"] == queries.info.backend_pid
                assert queries.info.backend_pid != listening.info.backend_pid
                assert (await driver.execute("SELECT 1")).startswith("SELECT")
                await driver.notify(CHANNEL, "ready")
                assert await asyncio.wait_for(received.get(), timeout=10) == "ready"
                await driver.remove_listener(CHANNEL, received.put_nowait)
            assert driver.shutdown.is_set()
        finally:
            await queries.close()
            await listening.close()
        assert queries.closed and listening.closed

    asyncio.run(scenario())


def test_a_queue_manager_on_it_finds_its_listener_healthy(make_postgres_database: Callable[[], str]) -> None:
    """pgqueuer's own probe: a NOTIFY sent on the queries' connection reaches the listening one."""
    url = make_postgres_database()
    queue.install(url)

    async def scenario() -> None:
        from pgqueuer import Queries, QueueManager

        driver, connections = await queue_driver.connect(queue.conninfo(url))
        manager = QueueManager(Queries(driver, **queue.builders()), channel=queue.settings().channel)

        @manager.entrypoint("orchestrator-test")
        async def nothing(job: object) -> None:
            return None

        running = asyncio.create_task(manager.run(dequeue_timeout=timedelta(seconds=1)))
        try:
            for _ in range(500):
                if connections[1].lock.locked():  # the listener is up
                    break
                await asyncio.sleep(0.01)
            event = await manager.listener_healthy(timeout=timedelta(seconds=10))
            assert event.type == "health_check_event"
        finally:
            manager.shutdown.set()
            await running
            for connection in connections:
                await connection.close()

    asyncio.run(scenario())
