"""What each phase change of the state machine announces: its trigger and the GitHub statuses it sends."""

from __future__ import annotations

import uuid

import pytest

from orchestrator.notify.facts import Facts
from orchestrator.notify.triggers import github_states, trigger_of
from orchestrator.outbound.signing import signature, verify
from orchestrator.store.transitions import TABLE


@pytest.mark.parametrize(
    ("before", "after", "trigger", "states"),
    [
        ("Pending", "Progressing", "on-started", ["queued", "in_progress"]),
        ("Pending", "AwaitingApproval", "on-awaiting-approval", ["queued"]),
        ("AwaitingApproval", "Progressing", "on-started", ["in_progress"]),
        ("AwaitingApproval", "Aborted", "on-rolled-back", ["failure"]),
        ("Progressing", "Paused", None, []),
        ("Paused", "Progressing", None, []),  # a pause ends: nothing new started
        ("Progressing", "Progressing", None, []),  # a crashed driver's rollout taken over
        ("Progressing", "Succeeded", "on-succeeded", ["success"]),
        ("Progressing", "RolledBack", "on-rolled-back", ["failure"]),
        ("Paused", "Aborted", "on-rolled-back", ["failure"]),
        ("Progressing", "Failed", "on-failed", ["failure"]),
        ("Failed", "Failed", None, []),  # a rollback that failed again
        ("Failed", "RolledBack", "on-rolled-back", ["failure"]),  # the same GitHub state: sent once
        ("Progressing", "AwaitingMerge", "on-awaiting-approval", []),  # GitHub: stays in_progress
        ("AwaitingMerge", "Progressing", None, []),  # merged: the rollout goes on, as after a pause
        ("AwaitingMerge", "Aborted", "on-rolled-back", ["failure"]),  # closed unmerged
    ],
)
def test_a_phase_change_fires_its_trigger_and_github_states(
    before: str, after: str, trigger: str | None, states: list[str]
) -> None:
    data = {"from": before, "to": after}
    assert trigger_of(data) == trigger
    assert github_states(data) == states


def test_every_move_of_the_state_machine_into_another_phase_is_announced_but_pauses() -> None:
    """Pausing and a pause ending start or end nothing a destination is told about; neither does a merge
    ending the wait for a pull request, whose start is announced without a GitHub status of its own."""
    for (phase, event), move in TABLE.items():
        data = {"from": phase.value, "to": move.to.value, "event": event.value}
        ending = (phase.value, move.to.value) in (("Paused", "Progressing"), ("AwaitingMerge", "Progressing"))
        if phase is move.to or move.to.value == "Paused" or ending:
            assert trigger_of(data) is None and github_states(data) == []
            continue
        if move.to.value == "AwaitingMerge":
            assert trigger_of(data) == "on-awaiting-approval" and github_states(data) == []
            continue
        assert trigger_of(data) is not None, (phase, event)
        assert github_states(data), (phase, event)


def test_the_signature_is_flux_generic_hmac() -> None:
    # Flux's generic-hmac receiver: X-Signature: sha256=<hex HMAC-SHA256 of the body>; this is RFC 4231's
    # test case 2 (key "Jefe").
    body = b"what do ya want for nothing?"
    expected = "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    assert signature(body, "Jefe") == expected
    assert verify(body, expected, "Jefe")
    assert not verify(body + b" ", expected, "Jefe")


@pytest.mark.parametrize(
    ("before", "outcome"),
    [
        ("Paused", "aborted (rolled back)"),
        ("Progressing", "aborted (rolled back)"),
        ("AwaitingApproval", "withdrawn before it touched any cluster"),
        ("AwaitingMerge", "withdrawn before it touched any cluster"),  # its pull request closed unmerged
    ],
)
def test_an_abort_says_rolled_back_only_when_something_was_applied(before: str, outcome: str) -> None:
    facts = Facts(
        deployment_id=uuid.uuid4(),
        service="api",
        environment="prod",
        kind="deploy",
        image="registry.example.com/api@sha256:" + "a" * 64,
        git_commit="b" * 40,
        deployed_by="dev@example.com",
        actor="lead@example.com",
        trigger="on-rolled-back",
        phase_from=before,
        phase="Aborted",
        message="aborted",
        at=None,
        gate=None,
        link=None,
    )
    assert facts.outcome == outcome
    assert facts.summary == f"api to prod: {outcome}"
