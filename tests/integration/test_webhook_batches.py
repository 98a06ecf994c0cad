"""Deliveries recorded many per transaction (`server/deliveries.py`), on SQLite and on Postgres.

What a batch must keep of one delivery per transaction: each delivery recorded once whatever else shares its
transaction (a redelivery in the same batch or of an earlier one is a duplicate, with nothing queued), each
new delivery's requests numbered in the order the deliveries came, one job per request, and a delivery
that cannot be recorded failing alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import psycopg
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from orchestrator.server.decision import Decision, Wanted
from orchestrator.server.deliveries import DUPLICATE, Delivery, DeliveryRecorder, write
from orchestrator.server.jobs import QueueJobs, RolloutJobs
from orchestrator.store import db, queue
from orchestrator.store.models import RolloutRequest, WebhookDelivery


class KeptJobs:
    """The jobs interface keeping the request ids it was handed (SQLite has no queue to count)."""

    def __init__(self) -> None:
        self.requests: list[int] = []

    def enqueue_rollout(self, deployment_id: object, *, reason: str) -> None:
        raise AssertionError("webhooks queue requests, not rollouts")

    def enqueue_requests(self, session: Session, request_ids: Sequence[int]) -> None:
        self.requests.extend(request_ids)

    def close(self) -> None:
        return None


def _sessions_and_jobs(url: str) -> tuple[sessionmaker[Session], RolloutJobs]:
    if queue.is_postgres(url):
        db.upgrade(url)
        queue.install(url)
        sessions = db.open_sessions(url)
        return sessions, QueueJobs(sessions)
    sessions = db.open_sessions(url)
    return sessions, KeptJobs()


def _queued_jobs(url: str, jobs: RolloutJobs) -> int:
    if isinstance(jobs, KeptJobs):
        return len(jobs.requests)
    with psycopg.connect(queue.conninfo(url)) as conn:
        row = conn.execute(f"SELECT count(*) FROM {queue.QUEUE_SCHEMA}.pgqueuer").fetchone()
    return int(row[0]) if row else 0


def push(delivery: str, *services: str) -> Delivery:
    decision = Decision(event="push", repository="acme/platform")
    decision.wanted = [Wanted(s, "local", git_commit="a" * 40) for s in services]
    return Delivery("github", delivery, decision)


def test_a_batch_records_each_delivery_once_and_numbers_requests_in_order(each_backend_url: str) -> None:
    sessions, jobs = _sessions_and_jobs(each_backend_url)
    _check_a_batch(each_backend_url, sessions, jobs)


@pytest.mark.postgres
def test_the_session_writer_on_postgres_keeps_the_same_rules(make_postgres_database) -> None:  # type: ignore[no-untyped-def]
    """Postgres with jobs other than the queue's goes through `SessionWriter` (its `postgresql.insert`),
    not `PostgresBatchWriter`: the same batch gives the same answers, rows and request order."""
    url = make_postgres_database()
    db.upgrade(url)
    _check_a_batch(url, db.open_sessions(url), KeptJobs())


def _check_a_batch(url: str, sessions: sessionmaker[Session], jobs: RolloutJobs) -> None:
    assert write(sessions, jobs, [push("earlier", "api")])[0].outcome == "queued"

    answers = write(
        sessions,
        jobs,
        [
            push("one", "api", "web"),
            push("earlier", "api"),  # recorded by an earlier transaction
            push("two", "web"),
            push("one", "api", "web"),  # the same delivery again, in the same batch
            Delivery("github", "ping", Decision(event="ping", repository=None, ping=True)),
            Delivery("registry", "one", Decision(event="registry push", repository="r")),  # another source
        ],
    )

    assert [a.outcome for a in answers] == ["queued", DUPLICATE, "queued", DUPLICATE, "ping", "ignored"]
    assert [a.requests for a in answers][1::2] == [[], [], []]
    assert len(answers[0].requests) == 2 and len(answers[2].requests) == 1
    assert answers[0].requests[0] < answers[0].requests[1] < answers[2].requests[0]
    with sessions() as session:
        stored = {
            r.id: (r.service, r.delivery.delivery_id if r.delivery else None)
            for r in session.scalars(select(RolloutRequest))
        }
        deliveries = sorted(
            session.execute(select(WebhookDelivery.source, WebhookDelivery.delivery_id)).all()
        )
    assert [stored[i] for i in answers[0].requests + answers[2].requests] == [
        ("api", "one"),
        ("web", "one"),
        ("web", "two"),
    ]
    assert deliveries == [
        ("github", "earlier"),
        ("github", "one"),
        ("github", "ping"),
        ("github", "two"),
        ("registry", "one"),
    ]
    assert _queued_jobs(url, jobs) == len(stored) == 4


def test_concurrent_deliveries_are_answered_after_their_commit(each_backend_url: str) -> None:
    sessions, jobs = _sessions_and_jobs(each_backend_url)
    recorder = DeliveryRecorder(sessions, lambda: jobs)

    async def many() -> list[str]:
        sent = [push(f"d{i % 40}", "api") for i in range(60)]  # 20 of them repeat an earlier id
        answers = await asyncio.gather(*(recorder.record(d) for d in sent))
        return [a.outcome for a in answers]

    try:
        outcomes = asyncio.run(many())
    finally:
        recorder.close()
    assert outcomes.count("queued") == 40 and outcomes.count(DUPLICATE) == 20
    with sessions() as session:
        assert len(session.scalars(select(RolloutRequest.id)).all()) == 40
    assert _queued_jobs(each_backend_url, jobs) == 40


@pytest.mark.postgres
def test_a_delivery_that_cannot_be_recorded_fails_alone(make_postgres_database) -> None:  # type: ignore[no-untyped-def]
    url = make_postgres_database()
    sessions, jobs = _sessions_and_jobs(url)
    recorder = DeliveryRecorder(sessions, lambda: jobs)
    bad = push("x" * 300, "api")  # longer than the column holds: Postgres refuses the row

    async def together() -> list[object]:
        return await asyncio.gather(
            *(recorder.record(d) for d in (push("good-1", "api"), bad, push("good-2", "web"))),
            return_exceptions=True,
        )

    try:
        first, failed, last = asyncio.run(together())
    finally:
        recorder.close()
    assert isinstance(failed, Exception)
    assert getattr(first, "outcome", None) == "queued" and getattr(last, "outcome", None) == "queued"
    assert _queued_jobs(url, jobs) == 2


@pytest.mark.postgres
def test_the_writer_takes_a_new_connection_when_postgres_dropped_its_own(make_postgres_database) -> None:  # type: ignore[no-untyped-def]
    url = make_postgres_database()
    sessions, jobs = _sessions_and_jobs(url)
    recorder = DeliveryRecorder(sessions, lambda: jobs)

    def terminate_the_others() -> int:
        # What a Postgres restart or an idle-connection reaper does to the writer's kept connection.
        with psycopg.connect(queue.conninfo(url), autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchone()
        return int(row[0]) if row else 0

    try:
        first = asyncio.run(recorder.record(push("before", "api")))
        assert terminate_the_others() >= 1
        second = asyncio.run(recorder.record(push("after", "api")))
    finally:
        recorder.close()
    assert first.outcome == second.outcome == "queued"
    with sessions() as session:
        assert sorted(session.scalars(select(WebhookDelivery.delivery_id))) == ["after", "before"]
    assert _queued_jobs(url, jobs) == 2


def test_a_database_that_cannot_be_reached_fails_the_delivery_with_its_reason(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # Nothing listens on this port: taking the writer's connection fails, and that failure is what the
    # delivery gets (the server answers it 503 with the database named), not an error of the writer's own.
    from orchestrator.store.db import DatabaseUnavailableError

    sessions = db.session_factory(db.make_engine("postgresql://postgres@127.0.0.1:1/none"))
    recorder = DeliveryRecorder(sessions, lambda: QueueJobs(sessions))
    try:
        with pytest.raises(DatabaseUnavailableError, match="cannot connect"):
            asyncio.run(recorder.record(push("unreached", "api")))
    finally:
        recorder.close()
