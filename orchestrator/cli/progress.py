"""A rollout's progress as the engine reports it: a live table on a terminal, plain lines otherwise.

The engine calls its `report` callback with one dict per event (`awaiting_approval`, `step`,
`step_completed`, `measurement`, `waiting`, `paused`, `gates`, `failed`, `finished`). On a terminal a
rich Live view redraws one row per cluster (weights, phase, last gate value) under the current step and
the time to the next; anywhere else (CI logs, a pipe) each event is one line, as a log reader wants it.

Both say once that a cluster with nothing to compare a canary with was deployed directly, and leave out the
later steps that had nothing left to do there.
"""

from __future__ import annotations

import atexit
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

Reporter = Callable[[dict[str, Any]], None]

SUCCEEDED = "Succeeded"  # the phase names of store.models.Phase, without importing the store at start


def progress_reporter(enabled: bool, *, file: IO[str] | None = None) -> Reporter:
    """The reporter `deploy`, `resume`, `approve` and `retry` hand the engine: nothing when disabled (JSON
    output), a live view when stdout is a terminal, plain lines otherwise."""
    if not enabled:
        return _silent
    console = Console(file=file, highlight=False, soft_wrap=True)
    if console.is_terminal:
        return LiveProgress(console)
    return PlainProgress(console)


def _silent(event: dict[str, Any]) -> None:  # noqa: ARG001
    return None


def _direct_note(clusters: list[str]) -> str:
    return f"{', '.join(clusters)}: first release here, nothing to compare a canary with: applied directly"


class PlainProgress:
    """One line per event: a step is printed when something happens in it, never as an empty `done`."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.started = time.monotonic()
        self._pending_step: str | None = None  # printed with the step's first event
        self._skipped = 0

    def _line(self, text: str) -> None:
        elapsed = f"[dim]{time.monotonic() - self.started:6.1f}s[/dim]"
        if self._pending_step is not None:
            self.console.print(f"{elapsed} {self._pending_step}")
            self._pending_step = None
        self.console.print(f"{elapsed} {text}")

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind == "step":
            self._pending_step = f"step {event['step']}: {event['label']}"
        elif kind == "step_completed":
            self._completed(event)
        elif kind == "waiting":
            remaining = max(0.0, event["until"] - time.time())
            until = datetime.fromtimestamp(event["until"]).strftime("%H:%M:%S")
            self._line(f"  next step in {remaining:.1f}s (at {until})")
        elif kind == "measurement":
            self._line(f"  [cyan]gate[/cyan] {event['cluster']}: {event['message']}")
        elif kind == "gates":
            self._line(f"health gates read {event['source']}")
        elif kind == "gitops" and event.get("state") == "committed":
            self._line(f"desired state {_committed(event)}")
        elif kind == "gitops" and event.get("state") == "pull_request":
            self._line(f"[yellow]pull request opened[/yellow]: {event['url']}")
        elif kind == "paused":
            self._line("[yellow]paused[/yellow] until approved")
        elif kind == "awaiting_approval":
            self._line(f"[yellow]awaiting approval[/yellow]: {event['message']}")
        elif kind == "failed":
            self._line(f"[red]failed[/red]: {event['reason']}")
        elif kind == "finished":
            self._pending_step = None
            if self._skipped:
                self._line(f"[dim]{self._skipped} step(s) had nothing left to do[/dim]")
            colour = "green" if event["phase"] == SUCCEEDED else "red"
            self._line(f"[{colour}]{event['phase']}[/{colour}]")

    def _completed(self, event: dict[str, Any]) -> None:
        if event.get("clusters") == []:
            self._pending_step = None  # every cluster of the step was already done: nothing happened
            self._skipped += 1
            return
        writes = event.get("writes") or {}
        weights = event.get("weights") or {}
        direct = list(event.get("direct") or [])
        parts = [
            f"{cluster}: {weights[cluster]}% canary" if cluster in weights else f"{cluster}: {count} write(s)"
            for cluster, count in writes.items()
            if cluster not in direct
        ]
        if direct:
            self._line(f"  [green]done[/green] {_direct_note(direct)}")
        if parts:
            self._line(f"  [green]done[/green] {'  '.join(parts)}")
        elif not direct and self._pending_step is not None:
            # Nothing was said during the step and nothing was written: it had nothing to do.
            self._pending_step = None
            self._skipped += 1


def _doing(step: str) -> str:
    """What the current step is waiting for, for the progress line under the table."""
    label = step.split(": ", 1)[-1]
    if label.startswith(("start canary", "promote", "deploy")):
        return "applying, then waiting for the Deployments to be ready"
    if label.startswith("analysis"):
        return "measuring the canary"
    if label.startswith("pause"):
        return "pausing"
    if label.startswith("awaiting approval"):
        return "waiting for an approver; nothing is touched until then"
    return "working"


def _figure(value: Any) -> str:
    """A measurement's value as a person reads it: 99.5, not [99.50000001]."""
    if isinstance(value, list):
        return ", ".join(_figure(v) for v in value) or "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


@dataclass
class _ClusterRow:
    stable: int | None = None
    canary: int | None = None
    phase: str = "waiting"
    gate: str = "-"


class LiveProgress:
    """A rich Live view: the current step, the time to the next, and one row per cluster.

    Lines that matter afterwards (a direct deploy, a gate failing, the end) are also printed above the view,
    so they stay on the screen when it is gone.
    """

    def __init__(self, console: Console, *, refresh_per_second: float = 8) -> None:
        self.console = console
        self.started = time.monotonic()
        self.rows: dict[str, _ClusterRow] = {}
        self.step = "starting"
        self.until: float | None = None
        self.note = ""
        self._stopped = False
        self.step_started = self.started
        self.live = Live(
            console=console,
            get_renderable=self.render,
            refresh_per_second=refresh_per_second,
            transient=False,
            redirect_stdout=False,
            redirect_stderr=False,
        )

    def _start(self) -> None:
        # Started with the first event, not when built: the command prints its own first line before the
        # rollout begins, and a running view would draw over it.
        if not self.live.is_started and not self._stopped:
            self.live.start()
            atexit.register(self.stop)  # an error that ends the command still restores the terminal

    def _row(self, cluster: str) -> _ClusterRow:
        return self.rows.setdefault(cluster, _ClusterRow())

    def __call__(self, event: dict[str, Any]) -> None:
        self._start()
        kind = event["type"]
        if kind == "step":
            self.step = f"step {event['step']}: {event['label']}"
            self.step_started = time.monotonic()
            self.until = None
            self.note = ""
            for cluster in event.get("clusters") or []:
                self._row(cluster)
        elif kind == "step_completed":
            self._completed(event)
        elif kind == "waiting":
            self.until = float(event["until"])
        elif kind == "measurement":
            metric = event.get("metric") or "gate"
            shown = _figure(event.get("value"))
            self._row(event["cluster"]).gate = f"{metric} {shown} {event.get('phase', '')}".rstrip()
            self.note = f"gate {event['cluster']}: {event['message']}"
        elif kind == "gates":
            self.note = f"health gates read {event['source']}"
        elif kind == "gitops" and event.get("state") == "committed":
            self.console.print(f"desired state {_committed(event)}")
        elif kind == "gitops" and event.get("state") == "pull_request":
            self.console.print(f"pull request opened: {event['url']}")
            self.step = "awaiting the merge of its pull request"
            self.note = str(event["message"])
        elif kind == "awaiting_approval":
            self.step = "awaiting approval"
            self.step_started = time.monotonic()
            self.note = str(event["message"])
        elif kind == "paused":
            self.step += " (paused until approved)"
            self.until = None
            self.stop()  # the command ends here: it prints how to continue
            return
        elif kind == "failed":
            self.console.print(f"[red]failed[/red]: {event['reason']}")
        elif kind == "finished":
            self.until = None
            for cluster in event.get("rolled_back") or []:
                row = self._row(cluster)
                row.stable, row.canary, row.phase = 100, 0, "rolled back"
            if event["phase"] == SUCCEEDED:
                for row in self.rows.values():
                    row.stable, row.canary, row.phase = 100, 0, "succeeded"
            self.step = f"finished: {event['phase']}"
            self.stop()  # draws the final state once more and leaves it on the screen
            return
        self.live.refresh()

    def _completed(self, event: dict[str, Any]) -> None:
        direct = list(event.get("direct") or [])
        for cluster in direct:
            row = self._row(cluster)
            row.stable, row.canary, row.phase = 100, 0, "deployed directly"
        if direct:
            self.console.print(_direct_note(direct))
        weights = event.get("weights") or {}
        for cluster, weight in weights.items():
            row = self._row(cluster)
            row.stable, row.canary, row.phase = 100 - weight, weight, f"canary {weight}%"
        label = str(event.get("label", ""))
        for cluster in event.get("clusters") or list(event.get("writes") or {}):
            if cluster in direct or cluster in weights:
                continue
            row = self._row(cluster)
            if label.startswith("start canary"):
                row.stable, row.canary, row.phase = 100, 0, "canary up, 0%"
            elif label.startswith("promote"):
                row.stable, row.canary, row.phase = 100, 0, "promoted"
            elif label.startswith("deploy"):
                row.stable, row.canary, row.phase = 100, 0, "deployed"

    def render(self) -> RenderableType:
        table = Table(title_justify="left", expand=False)
        for column in ("cluster", "stable %", "canary %", "phase", "last gate"):
            table.add_column(column)
        for name, row in self.rows.items():
            table.add_row(
                name,
                "-" if row.stable is None else str(row.stable),
                "-" if row.canary is None else str(row.canary),
                row.phase,
                row.gate,
            )
        elapsed = time.monotonic() - self.started
        head = Text(f"{elapsed:6.1f}s  {self.step}")
        if self.until is not None:
            head.append(f"  next step in {max(0.0, self.until - time.time()):.1f}s")
        parts: list[RenderableType] = [head, table]
        if self.note:
            parts.append(Text(self.note, style="dim"))
        if not self._stopped and not self.step.startswith("finished"):
            in_step = f"{time.monotonic() - self.step_started:.0f}s"
            parts.append(Spinner("dots", text=f"{_doing(self.step)} ({in_step} in this step)"))
        return Group(*parts)

    def stop(self) -> None:
        self._stopped = True
        if self.live.is_started:
            self.live.stop()


def _committed(event: dict[str, Any]) -> str:
    """`committed as 3f2a1b4c5d6e`, or that git already held it (an unchanged release makes no commit)."""
    sha = str(event.get("commit", ""))[:12]
    return f"committed as {sha}" if event.get("created") else f"unchanged (already committed as {sha})"
