"""The phases of a measurement, a metric and an analysis run (Argo Rollouts' AnalysisPhase)."""

from __future__ import annotations

from enum import StrEnum


class AnalysisPhase(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCESSFUL = "Successful"
    INCONCLUSIVE = "Inconclusive"
    ERROR = "Error"
    FAILED = "Failed"

    @property
    def completed(self) -> bool:
        return self not in (AnalysisPhase.PENDING, AnalysisPhase.RUNNING)

    def is_worse_than(self, other: AnalysisPhase) -> bool:
        """Argo's order, best to worst: Pending, Running, Successful, Inconclusive, Error, Failed."""
        return _ORDER.index(self) > _ORDER.index(other)


_ORDER = [
    AnalysisPhase.PENDING,
    AnalysisPhase.RUNNING,
    AnalysisPhase.SUCCESSFUL,
    AnalysisPhase.INCONCLUSIVE,
    AnalysisPhase.ERROR,
    AnalysisPhase.FAILED,
]
