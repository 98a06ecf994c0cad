"""The progress reporters, fed the events the rollout engine emits (their shapes as in engine.py)."""

from __future__ import annotations

import io
import re
import time
from typing import Any

from rich.console import Console

from orchestrator.cli import history
from orchestrator.cli.progress import LiveProgress, PlainProgress, progress_reporter
from orchestrator.store import db, repository

FIRST_RELEASE: list[dict[str, Any]] = [
    {"type": "step", "step": 0, "label": "start canary · wave 1 (aws)", "clusters": ["aws"]},
    {"type": "step_completed", "step": 0, "label": "start canary", "writes": {"aws": 9}, "clusters": ["aws"],
     "direct": ["aws"]},
    {"type": "step", "step": 1, "label": "setWeight 20 · wave 1 (aws)", "clusters": ["aws"]},
    {"type": "step_completed", "step": 1, "label": "setWeight 20", "writes": {}, "clusters": [],
     "direct": []},
    {"type": "step", "step": 2, "label": "promote · all clusters", "clusters": ["aws"]},
    {"type": "step_completed", "step": 2, "label": "promote", "writes": {}, "clusters": [], "direct": []},
    {"type": "finished", "phase": "Succeeded"},
]  # fmt: skip

CANARY: list[dict[str, Any]] = [
    {"type": "step", "step": 0, "label": "start canary · wave 1 (aws, gcp)", "clusters": ["aws", "gcp"]},
    {"type": "step_completed", "step": 0, "label": "start canary · wave 1 (aws, gcp)",
     "writes": {"aws": 3, "gcp": 3}, "clusters": ["aws", "gcp"], "direct": []},
    {"type": "step", "step": 1, "label": "setWeight 20 · wave 1 (aws, gcp)", "clusters": ["aws", "gcp"]},
    {"type": "step_completed", "step": 1, "label": "setWeight 20 · wave 1 (aws, gcp)",
     "writes": {"aws": 1, "gcp": 1}, "clusters": ["aws", "gcp"], "direct": [],
     "weights": {"aws": 20, "gcp": 20}},
    {"type": "step", "step": 2, "label": "analysis request-success-rate · wave 1 (aws, gcp)",
     "clusters": ["aws", "gcp"]},
    {"type": "measurement", "cluster": "gcp", "metric": "request-success-rate", "value": [99.51234],
     "phase": "Successful", "message": "request-success-rate = 99.51 -> Successful"},
]  # fmt: skip


def _plain(events: list[dict[str, Any]]) -> list[str]:
    out = io.StringIO()
    printer = PlainProgress(Console(file=out, width=200, highlight=False))
    for event in events:
        printer(event)
    return [re.sub(r"^\s*\d+\.\ds ", "", line) for line in out.getvalue().splitlines()]


def test_plain_lines_say_once_that_a_first_release_was_applied_directly() -> None:
    assert _plain(FIRST_RELEASE) == [
        "step 0: start canary · wave 1 (aws)",
        "  done aws: first release here, nothing to compare a canary with: applied directly",
        "2 step(s) had nothing left to do",
        "Succeeded",
    ]


def test_plain_lines_show_weights_and_gate_measurements() -> None:
    assert _plain(CANARY) == [
        "step 0: start canary · wave 1 (aws, gcp)",
        "  done aws: 3 write(s)  gcp: 3 write(s)",
        "step 1: setWeight 20 · wave 1 (aws, gcp)",
        "  done aws: 20% canary  gcp: 20% canary",
        "step 2: analysis request-success-rate · wave 1 (aws, gcp)",
        "  gate gcp: request-success-rate = 99.51 -> Successful",
    ]


def test_the_live_view_has_a_row_per_cluster_with_weights_phase_and_last_gate() -> None:
    out = io.StringIO()
    view = LiveProgress(Console(file=out, width=120, force_terminal=True, highlight=False))
    for event in CANARY:
        view(event)
    view({"type": "waiting", "until": 4_000_000_000.0})
    frame = io.StringIO()
    Console(file=frame, width=120, highlight=False).print(view.render())
    text = frame.getvalue()
    assert "step 2: analysis request-success-rate · wave 1 (aws, gcp)  next step in" in text
    assert re.search(r"measuring the canary \(\d+s in this step\)", text)  # the progress line
    assert re.search(r"│ aws\s*│ 80\s*│ 20\s*│ canary 20%\s*│ -\s*│", text)
    assert re.search(
        r"│ gcp\s*│ 80\s*│ 20\s*│ canary 20%\s*│ request-success-rate 99.51 Successful\s*│", text
    )
    view({"type": "finished", "phase": "RolledBack", "rolled_back": ["aws", "gcp"]})
    assert not view.live.is_started
    assert re.search(r"│ aws\s*│ 100\s*│ 0\s*│ rolled back", out.getvalue())


def test_the_reporter_is_plain_off_a_terminal_and_silent_for_json() -> None:
    assert isinstance(progress_reporter(True, file=io.StringIO()), PlainProgress)
    silent = progress_reporter(False, file=io.StringIO())
    assert not isinstance(silent, PlainProgress | LiveProgress)
    assert silent({"type": "finished", "phase": "Succeeded"}) is None


def test_defaults_repeated_for_a_fast_help_match_their_source() -> None:
    assert history.DEFAULT_LIMIT == repository.DEFAULT_HISTORY_LIMIT
    assert db.DATABASE_URL_ENV == "ORCHESTRATOR_DATABASE_URL"


def test_a_step_with_nothing_to_report_prints_no_empty_done_line() -> None:
    lines = _plain(
        [
            {"type": "step", "step": 3, "label": "pause 0.3s · wave 1 (aws)", "clusters": ["aws"]},
            {"type": "waiting", "until": time.time() + 0.3},
            {"type": "step_completed", "step": 3, "label": "pause 0.3s", "writes": {}, "clusters": ["aws"]},
            # An event without `clusters`, as a step that had nothing left to do may be reported.
            {"type": "step", "step": 4, "label": "setWeight 100 · wave 1 (aws)"},
            {"type": "step_completed", "step": 4, "label": "setWeight 100", "writes": {}},
            {"type": "finished", "phase": "Succeeded"},
        ]
    )
    assert lines[0] == "step 3: pause 0.3s · wave 1 (aws)"
    assert lines[1].startswith("  next step in ")
    assert lines[2:] == ["1 step(s) had nothing left to do", "Succeeded"]


def test_the_desired_state_commit_is_shown_new_or_unchanged() -> None:
    sha = "3f2a1b4c5d6e7f8091a2b3c4d5e6f708192a3b4c"
    lines = _plain(
        [
            {"type": "gitops", "state": "committing"},
            {"type": "gitops", "state": "committed", "commit": sha, "created": True},
            {"type": "gitops", "state": "committed", "commit": sha, "created": False},
        ]
    )
    assert lines == [
        "desired state committed as 3f2a1b4c5d6e",
        "desired state unchanged (already committed as 3f2a1b4c5d6e)",
    ]
