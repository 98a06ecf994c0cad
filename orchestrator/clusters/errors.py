"""The one error every cluster target raises when it cannot give an authenticated client."""

from __future__ import annotations

from orchestrator.errors import OrchestratorError


class ClusterConnectionError(OrchestratorError):
    """A cluster could not be reached or refused our credentials; the message names the cluster and why."""

    def __init__(self, cluster: str, cause: str, *, target: str | None = None) -> None:
        self.cluster = cluster
        self.cause = _one_line(cause)
        self.target = target
        where = f"cluster {cluster!r}" + (f" ({target})" if target else "")
        super().__init__(f"{where}: {self.cause}")


def _one_line(text: str) -> str:
    # Cloud SDK messages often span lines (or carry a whole response body); the person at the keyboard
    # gets one line, and the first 300 characters are the part that says what went wrong.
    flat = " ".join(text.split())
    return flat if len(flat) <= 300 else flat[:297] + "..."
