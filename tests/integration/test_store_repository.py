"""What the rest of the orchestrator records through the repository, on SQLite and on a real Postgres."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, delete, event, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from orchestrator.errors import OrchestratorError
from orchestrator.store import db, progress, repository
from orchestrator.store.models import (
    ACTIVE_PHASES,
    ClusterDeployment,
    Deployment,
    DeploymentEvent,
    ImmutableRowError,
    Phase,
    Release,
    Strategy,
    User,
)
from orchestrator.store.repository import ClusterPlacement
from orchestrator.store.transitions import Event, TransitionError
from orchestrator.store.views import deployment_view, event_view

T0 = datetime(2025, 6, 1, 9, 0, tzinfo=UTC)
SEED_CLUSTERS = [
    ClusterPlacement("aws-primary", "aws", "us-west-2", wave=1),
    ClusterPlacement("azure-secondary", "azure", "eastus", wave=2),
    ClusterPlacement("gcp-tertiary", "gcp", "us-central1", wave=2),
]


@pytest.fixture
def engine(each_backend_url: str) -> Iterator[Engine]:
    db.upgrade(each_backend_url)
    engine = db.make_engine(each_backend_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return db.session_factory(engine)


@pytest.fixture
def session(sessions: sessionmaker[Session]) -> Iterator[Session]:
    with sessions() as session:
        yield session


def _release(session: Session, commit: str = "a1b2c3d4e5f6a7b8", **overrides: str) -> Release:
    fields = {
        "service": "api",
        "git_commit": commit,
        "image_repository": "registry.local/api",
        "image_digest": f"sha256:{commit * 4}",
        "manifest_hash": f"m-{commit}",
        **overrides,
    }
    return repository.get_or_create_release(session, **fields)


def _deployment(
    session: Session, environment: str = "prod", *, at: datetime = T0, commit: str = "c0"
) -> Deployment:
    release = _release(session, commit=commit)
    return repository.create_deployment(
        session,
        release=release,
        environment=environment,
        strategy=Strategy.CANARY,
        clusters=SEED_CLUSTERS,
        actor="ci",
        reason="push to main",
        now=at,
    )


# --- releases ---------------------------------------------------------------------------------------------


def test_the_same_release_is_recorded_once(session: Session) -> None:
    first = _release(session)
    session.commit()
    again = _release(session)
    assert again.id == first.id
    other_manifests = _release(session, manifest_hash="m-different")
    assert other_manifests.id != first.id
    assert len(session.scalars(select(Release)).all()) == 2


def test_two_workers_recording_one_release_get_one_row(make_postgres_database: Callable[[], str]) -> None:
    """Both look before either inserts; the database settles it, and the loser gets the winner's row.

    Postgres only: SQLite transactions here take the write lock up front, so there the race cannot happen.
    """
    url = make_postgres_database()
    db.upgrade(url)
    engine = db.make_engine(url)
    sessions = db.session_factory(engine)
    try:
        with sessions() as loser_session, sessions() as winner_session:

            def other_worker_commits_first(session: Session, context: object, instances: object) -> None:
                # Fires as the loser flushes its insert, after its lookup found nothing.
                if winner_session.in_transaction():
                    return
                _release(winner_session)
                winner_session.commit()

            event.listen(loser_session, "before_flush", other_worker_commits_first)
            loser = _release(loser_session)
            event.remove(loser_session, "before_flush", other_worker_commits_first)
            winner = winner_session.scalars(select(Release)).one()
            assert loser.id == winner.id
            loser_session.commit()
        with sessions() as check:
            assert len(check.scalars(select(Release)).all()) == 1
    finally:
        engine.dispose()


def test_a_release_digest_is_filled_once_and_never_changed(session: Session) -> None:
    release = repository.get_or_create_release(
        session,
        service="api",
        git_commit="f00d",
        image_repository="registry.local/api",
        image_tag="f00d",
        manifest_hash="m1",
    )
    session.commit()
    assert release.image_ref == "registry.local/api:f00d"
    repository.set_release_digest(session, release, "sha256:1111")
    session.commit()
    repository.set_release_digest(session, release, "sha256:1111")  # the same digest again is no change
    with pytest.raises(ImmutableRowError, match="already has image digest sha256:1111"):
        repository.set_release_digest(session, release, "sha256:2222")
    # Going around the repository does not work either.
    release.git_commit = "beef"
    with pytest.raises(ImmutableRowError, match="immutable; cannot change 'git_commit'"):
        session.flush()
    session.rollback()
    session.expire_all()
    release.image_digest = "sha256:3333"
    with pytest.raises(ImmutableRowError, match="cannot change 'image_digest'"):
        session.flush()


# --- deployments and their audit trail --------------------------------------------------------------------


def test_a_new_deployment_spans_its_clusters_and_says_so(session: Session) -> None:
    deployment = _deployment(session)
    session.commit()
    assert deployment.phase == Phase.PENDING
    assert deployment.status == "pending"
    assert (deployment.cloud_provider, deployment.region) == ("multi", "multi")
    assert [
        (c.cluster, c.cloud, c.wave, c.phase, c.canary_weight, c.stable_weight) for c in deployment.clusters
    ] == [
        ("aws-primary", "aws", 1, "Pending", 0, 100),
        ("azure-secondary", "azure", 2, "Pending", 0, 100),
        ("gcp-tertiary", "gcp", 2, "Pending", 0, 100),
    ]
    [created] = repository.events_for(session, deployment.id)
    assert (created.seq, created.type, created.actor) == (1, "created", "ci")
    assert created.data == {
        "release_id": str(deployment.release_id),
        "clusters": [c.name for c in SEED_CLUSTERS],
    }


def test_a_single_cluster_deployment_keeps_its_cloud_and_region(session: Session) -> None:
    release = _release(session)
    deployment = repository.create_deployment(
        session,
        release=release,
        environment="dev",
        strategy="rolling",
        clusters=[ClusterPlacement("sim-aws", "aws", "us-west-2")],
    )
    assert (deployment.cloud_provider, deployment.region) == ("aws", "us-west-2")


def test_bad_deployment_input_is_refused_with_the_reason(session: Session) -> None:
    release = _release(session)
    with pytest.raises(OrchestratorError, match="names no clusters"):
        repository.create_deployment(
            session, release=release, environment="dev", strategy="canary", clusters=[]
        )
    twice = [ClusterPlacement("a", "aws", "r"), ClusterPlacement("a", "aws", "r")]
    with pytest.raises(OrchestratorError, match="lists cluster\\(s\\) twice: a"):
        repository.create_deployment(
            session, release=release, environment="dev", strategy="canary", clusters=twice
        )
    with pytest.raises(
        OrchestratorError, match="unknown rollout strategy 'bogus'; known strategies: canary, "
    ):
        repository.create_deployment(
            session, release=release, environment="dev", strategy="bogus", clusters=SEED_CLUSTERS
        )


def test_event_numbers_run_one_two_three(session: Session) -> None:
    deployment = _deployment(session)
    for step in range(5):
        repository.append_event(
            session, deployment, "step", f"step {step}", step=step, data={"weight": step * 20}
        )
    session.commit()
    events = repository.events_for(session, deployment.id)
    assert [e.seq for e in events] == [1, 2, 3, 4, 5, 6]
    assert [e.step for e in events] == [None, 0, 1, 2, 3, 4]
    assert events[3].data == {"weight": 40}
    assert [e.seq for e in repository.events_for(session, deployment.id, after_seq=4)] == [5, 6]
    assert deployment.last_event_seq == 6
    assert event_view(events[1])["message"] == "step 0"


def test_a_step_is_advanced_once_and_numbered_with_the_other_events(session: Session) -> None:
    deployment = _deployment(session)
    repository.append_event(session, deployment, "step_started", "setWeight 10", step=0)
    connection = session.connection()  # the step's record shares the Session's transaction
    assert progress.advance_step(
        connection, deployment.id, step=0, message="setWeight 10", data={"writes": 1}
    )
    assert not progress.advance_step(connection, deployment.id, step=0, message="again")  # already past it
    session.commit()
    session.refresh(deployment)
    assert deployment.current_step == 1
    events = repository.events_for(session, deployment.id)
    assert [(e.seq, e.type, e.step) for e in events] == [
        (1, "created", None),
        (2, "step_started", 0),
        (3, "step_completed", 0),
    ]
    assert events[-1].data == {"writes": 1}


def test_a_step_sets_the_weights_of_the_named_clusters_only(engine: Engine, session: Session) -> None:
    deployment = _deployment(session)
    session.commit()
    names = [c.name for c in SEED_CLUSTERS]
    with engine.begin() as connection:
        progress.set_cluster_weights(
            connection, deployment.id, names[:2], canary_weight=25, phase=Phase.PROGRESSING
        )
        progress.set_cluster_weights(
            connection, deployment.id, names[2:], canary_weight=0, phase=Phase.SUCCEEDED, message="direct"
        )
        progress.set_cluster_weights(connection, deployment.id, [], canary_weight=50, phase=Phase.FAILED)
        now = progress.read_progress(connection, deployment.id)
        assert (now.phase, now.current_step) == (progress.read_phase(connection, deployment.id), 0)
    session.expire_all()
    rows = {c.cluster: (c.canary_weight, c.stable_weight, c.phase, c.message) for c in deployment.clusters}
    assert rows == {
        names[0]: (25, 75, "Progressing", None),
        names[1]: (25, 75, "Progressing", None),
        names[2]: (0, 100, "Succeeded", "direct"),
    }


def test_a_rolled_back_transaction_gives_its_event_number_back(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        deployment = _deployment(session)
        session.commit()
        repository.append_event(session, deployment, "step", "never committed")
        session.rollback()
        repository.append_event(session, deployment, "step", "committed")
        session.commit()
        assert [(e.seq, e.message) for e in repository.events_for(session, deployment.id)][1:] == [
            (2, "committed")
        ]


def test_concurrent_appenders_never_share_or_skip_a_number(sessions: sessionmaker[Session]) -> None:
    """Workers, the API and the CLI all append to one deployment at once; numbers stay 1..N."""
    with sessions() as session:
        deployment_id = _deployment(session).id
        session.commit()
    writers, per_writer = 4, 15
    errors: list[BaseException] = []
    start = threading.Barrier(writers)

    def write(writer: int) -> None:
        try:
            start.wait()
            for i in range(per_writer):
                with sessions() as own:
                    deployment = own.get_one(Deployment, deployment_id)
                    repository.append_event(
                        own, deployment, "note", f"writer {writer} #{i}", actor=f"w{writer}"
                    )
                    own.commit()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    with sessions() as session:
        seqs = [e.seq for e in repository.events_for(session, deployment_id)]
    assert seqs == list(range(1, writers * per_writer + 2))


def test_events_cannot_be_rewritten(session: Session) -> None:
    deployment = _deployment(session)
    [event] = repository.events_for(session, deployment.id)
    event.message = "something else"
    with pytest.raises(ImmutableRowError, match="audit trail"):
        session.flush()


def test_phase_changes_stamp_times_mirror_status_and_are_audited(session: Session) -> None:
    deployment = _deployment(session)
    repository.set_phase(
        session,
        deployment,
        Phase.PROGRESSING,
        event=Event.START,
        step=0,
        actor="worker-1",
        now=T0 + timedelta(1),
    )
    repository.set_phase(
        session,
        deployment,
        "Paused",
        event=Event.STEP_PAUSE,
        message="waiting for approval",
        step=2,
        now=T0 + timedelta(2),
    )
    repository.set_phase(session, deployment, Phase.PROGRESSING, event=Event.APPROVE, now=T0 + timedelta(2))
    event = repository.set_phase(
        session, deployment, Phase.SUCCEEDED, event=Event.COMPLETED, step=5, now=T0 + timedelta(3)
    )
    session.commit()
    session.expire_all()
    assert (deployment.phase, deployment.status, deployment.current_step) == ("Succeeded", "succeeded", 5)
    assert deployment.started_at == T0 + timedelta(1)
    assert deployment.finished_at == T0 + timedelta(3)
    assert deployment.message == "waiting for approval"
    assert (event.type, event.data) == (
        "phase",
        {"from": "Progressing", "to": "Succeeded", "event": "completed"},
    )
    trail = [(e.seq, e.type, e.message) for e in repository.events_for(session, deployment.id)]
    assert trail == [
        (1, "created", trail[0][2]),
        (2, "phase", "Pending -> Progressing"),
        (3, "phase", "waiting for approval"),
        (4, "phase", "Paused -> Progressing"),
        (5, "phase", "Progressing -> Succeeded"),
    ]


def test_a_move_the_state_machine_does_not_have_is_refused_naming_both_phases(session: Session) -> None:
    deployment = _deployment(session)
    with pytest.raises(TransitionError, match="cannot go from Pending to Succeeded on completed"):
        repository.set_phase(session, deployment, Phase.SUCCEEDED, event=Event.COMPLETED)
    with pytest.raises(TransitionError, match="cannot go from Pending to Paused on start"):
        repository.set_phase(session, deployment, Phase.PAUSED, event=Event.START)
    session.commit()
    session.expire_all()
    assert deployment.phase == "Pending"
    assert [e.type for e in repository.events_for(session, deployment.id)] == ["created"]


def test_an_unknown_phase_lists_the_known_ones(session: Session) -> None:
    deployment = _deployment(session)
    with pytest.raises(OrchestratorError, match="unknown deployment phase 'Done'; known phases: Pending, "):
        repository.set_phase(session, deployment, "Done", event=Event.START)


def test_one_rollout_at_a_time_per_service_and_environment(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        first = _deployment(session, at=T0, commit="c1")
        second = _deployment(session, at=T0 + timedelta(minutes=1), commit="c2")
        elsewhere = _deployment(session, "staging", at=T0, commit="c1")
        repository.set_phase(session, first, Phase.PROGRESSING, event=Event.START)
        session.commit()
        with pytest.raises(
            repository.DeploymentConflictError, match=f"already being rolled out by deployment {first.id}"
        ):
            repository.set_phase(session, second, Phase.PROGRESSING, event=Event.START)
        # The refusal cost nothing else: the session goes on, and another environment is free.
        repository.set_phase(session, elsewhere, Phase.PROGRESSING, event=Event.START)
        repository.set_phase(session, elsewhere, Phase.PAUSED, event=Event.PAUSE)
        session.commit()
        assert session.get_one(Deployment, second.id).phase == Phase.PENDING
        repository.set_phase(session, first, Phase.FAILED, event=Event.ROLLBACK_FAILED)
        repository.set_phase(session, second, Phase.PROGRESSING, event=Event.START)
        session.commit()
        active = repository.latest_deployment(session, "api", "prod", phases=ACTIVE_PHASES)
        assert active is not None and active.id == second.id


def test_cluster_state_is_upserted(session: Session) -> None:
    deployment = _deployment(session)
    row = repository.upsert_cluster_deployment(
        session, deployment, "aws-primary", phase="Progressing", canary_weight=20, message="step 1"
    )
    assert (row.canary_weight, row.stable_weight, row.cloud, row.wave) == (20, 80, "aws", 1)
    added = repository.upsert_cluster_deployment(
        session, deployment, "onprem", cloud="kubeconfig", region="dc1", wave=3, phase=Phase.PENDING
    )
    session.commit()
    assert added.deployment_id == deployment.id
    rows = session.scalars(select(ClusterDeployment).where(ClusterDeployment.deployment_id == deployment.id))
    assert sorted((r.cluster, r.phase, r.canary_weight) for r in rows) == [
        ("aws-primary", "Progressing", 20),
        ("azure-secondary", "Pending", 0),
        ("gcp-tertiary", "Pending", 0),
        ("onprem", "Pending", 0),
    ]


def test_cluster_state_input_is_checked(session: Session) -> None:
    deployment = _deployment(session)
    with pytest.raises(
        OrchestratorError, match="canary_weight for cluster aws-primary must be between 0 and 100"
    ):
        repository.upsert_cluster_deployment(session, deployment, "aws-primary", canary_weight=120)
    with pytest.raises(OrchestratorError, match=r"cluster new-one is new .* its cloud and region are needed"):
        repository.upsert_cluster_deployment(session, deployment, "new-one", phase="Progressing")


def test_history_is_newest_first_and_filters_by_environment(session: Session) -> None:
    for minute, (environment, commit) in enumerate(
        [("dev", "c1"), ("staging", "c1"), ("dev", "c2"), ("prod", "c1")]
    ):
        _deployment(session, environment, at=T0 + timedelta(minutes=minute), commit=commit)
    session.commit()
    listed = [(d.environment, d.release.git_commit) for d in repository.list_deployments(session, "api")]
    assert listed == [("prod", "c1"), ("dev", "c2"), ("staging", "c1"), ("dev", "c1")]
    dev = [d.release.git_commit for d in repository.list_deployments(session, "api", "dev")]
    assert dev == ["c2", "c1"]
    assert len(repository.list_deployments(session, "api", limit=2)) == 2
    assert repository.list_deployments(session, "other-service") == []
    view = deployment_view(repository.list_deployments(session, "api", limit=1)[0])
    assert view["release"]["git_commit"] == "c1" and len(view["clusters"]) == 3


def test_history_search_filters_by_actor_outcome_and_dates_in_the_database(session: Session) -> None:
    first = _deployment(session, "dev", at=T0, commit="c1")
    second = _deployment(session, "dev", at=T0 + timedelta(days=1), commit="c2")
    second.actor = "Dev@Example.com"
    repository.set_phase(session, second, Phase.PROGRESSING, event=Event.START)
    repository.set_phase(session, second, Phase.SUCCEEDED, event=Event.COMPLETED)
    third = _deployment(session, "prod", at=T0 + timedelta(days=2), commit="c3")
    session.commit()

    def found(**filters: object) -> list[str]:
        return [d.release.git_commit for d in repository.list_deployments(session, "api", **filters)]  # type: ignore[arg-type]

    assert found(actor="dev@example.com") == ["c2"]  # the audit name, whatever its case
    assert found(actor="ci") == ["c3", "c1"]
    assert found(phases=["Succeeded"]) == ["c2"]
    assert found(phases=[Phase.PENDING, "Succeeded"]) == ["c3", "c2", "c1"]
    # [from, before): a deployment exactly at `before` belongs to the next range.
    assert found(created_from=T0 + timedelta(days=1)) == ["c3", "c2"]
    assert found(created_before=T0 + timedelta(days=1)) == ["c1"]
    assert found(created_from=T0, created_before=T0 + timedelta(days=2), phases=["Pending"]) == ["c1"]
    assert found(actor="ci", phases=["Succeeded"]) == []
    assert {first.id, third.id} == {d.id for d in repository.list_deployments(session, None, actor="ci")}


def test_latest_good_deployment_is_what_a_rollback_returns_to(session: Session) -> None:
    good = _deployment(session, at=T0, commit="c1")
    repository.set_phase(session, good, Phase.PROGRESSING, event=Event.START)
    repository.set_phase(session, good, Phase.SUCCEEDED, event=Event.COMPLETED)
    bad = _deployment(session, at=T0 + timedelta(hours=1), commit="c2")
    repository.set_phase(session, bad, Phase.PROGRESSING, event=Event.START)
    repository.set_phase(session, bad, Phase.ROLLED_BACK, event=Event.ROLLED_BACK)
    session.commit()
    latest = repository.latest_deployment(session, "api", "prod")
    last_good = repository.latest_deployment(session, "api", "prod", phases={Phase.SUCCEEDED})
    assert latest is not None and latest.id == bad.id
    assert last_good is not None and last_good.release.git_commit == "c1"
    assert repository.latest_deployment(session, "api", "dev") is None


def test_a_deployment_is_found_by_id_or_unique_prefix(session: Session) -> None:
    deployment = _deployment(session)
    session.commit()
    full = str(deployment.id)
    assert repository.get_deployment(session, deployment.id).id == deployment.id
    assert repository.get_deployment(session, full).id == deployment.id
    assert repository.get_deployment(session, full[:8].upper()).id == deployment.id
    with pytest.raises(repository.DeploymentNotFoundError, match="no deployment id starts with"):
        repository.get_deployment(session, "0000000" if not full.startswith("0000000") else "fffffff")
    with pytest.raises(repository.DeploymentRefError, match="is not a deployment id") as bad_ref:
        repository.get_deployment(session, "xyz")
    assert bad_ref.value.exit_code == 2  # bad usage, not a failed operation


def test_deleting_a_deployment_takes_its_trail_and_cluster_rows_with_it(session: Session) -> None:
    deployment = _deployment(session)
    session.commit()
    session.execute(delete(Deployment).where(Deployment.id == deployment.id))
    session.commit()
    assert session.scalars(select(DeploymentEvent)).all() == []
    assert session.scalars(select(ClusterDeployment)).all() == []


def test_foreign_keys_are_enforced(session: Session) -> None:
    release = _release(session)
    session.commit()
    session.add(User(email="ops@example.com", password_hash="x", role="superuser"))
    with pytest.raises(IntegrityError):
        session.flush()
    session.rollback()
    _deployment(session, commit=release.git_commit)
    session.commit()
    with pytest.raises(IntegrityError):  # a release that deployments point at cannot go
        session.execute(delete(Release).where(Release.id == release.id))


def test_users_default_to_pending_viewers(session: Session) -> None:
    user = User(email="dev@example.com", password_hash="argon2$...")
    session.add(user)
    session.commit()
    assert (user.role, user.status) == ("viewer", "pending")
    assert user.created_at.tzinfo is not None
