"""`Siblings`: the runs of one gate stop together at the first deciding verdict, with no measurement of
another run started after the deciding one finished."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from orchestrator.analysis import AnalysisPhase, Siblings


def deciding(phase: AnalysisPhase) -> bool:
    return phase in (AnalysisPhase.FAILED, AnalysisPhase.ERROR)


def test_a_deciding_verdict_refuses_the_other_runs_next_measurement_but_not_its_own() -> None:
    siblings = Siblings(deciding)
    aws, gcp = object(), object()
    now = lambda: datetime(2026, 12, 2, tzinfo=UTC)  # noqa: E731
    assert siblings.begin(gcp, now) is not None
    with siblings.settling(aws) as decide:
        decide(AnalysisPhase.INCONCLUSIVE)  # does not decide this gate
    assert siblings.begin(gcp, now) is not None and not siblings.stopped_for(gcp)
    with siblings.settling(aws) as decide:
        decide(AnalysisPhase.FAILED)
    assert siblings.begin(gcp, now) is None and siblings.stopped_for(gcp)
    assert siblings.begin(aws, now) is not None  # the deciding run finishes its round's other metrics
    assert not siblings.stopped_for(aws)


def test_no_start_stamped_after_the_deciding_finish_under_contention() -> None:
    """Many runs stamping starts while one settles a failure: every start either precedes the deciding
    finish or is refused (the finish is stamped and the gate decided under the same lock)."""
    siblings = Siblings(deciding)
    clock = [datetime(2026, 12, 2, tzinfo=UTC)]
    tick = threading.Lock()

    def now() -> datetime:
        with tick:
            clock[0] += timedelta(microseconds=1)
            return clock[0]

    starts: list[datetime] = []
    finished: list[datetime] = []
    go = threading.Event()

    def sibling() -> None:
        me = object()
        go.wait()
        while (began := siblings.begin(me, now)) is not None:
            starts.append(began)

    def decider() -> None:
        me = object()
        go.wait()
        while len(starts) < 200:  # the siblings are measuring
            pass
        with siblings.settling(me) as decide:
            finished.append(now())
            decide(AnalysisPhase.FAILED)

    threads = [threading.Thread(target=sibling) for _ in range(4)] + [threading.Thread(target=decider)]
    for thread in threads:
        thread.start()
    go.set()
    for thread in threads:
        thread.join(timeout=10)
    [finish] = finished
    assert starts and all(start < finish for start in starts)
