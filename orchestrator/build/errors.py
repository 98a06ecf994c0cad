"""What can go wrong while building and pushing, each error naming the piece at fault (exit code 1)."""

from __future__ import annotations

from orchestrator.errors import OrchestratorError


class DockerUnavailableError(OrchestratorError):
    """No Docker daemon to build with: says where it was looked for and what to do instead."""


class BuildFailedError(OrchestratorError):
    """`docker build` failed: names the Dockerfile instruction that failed and shows its output."""

    def __init__(
        self, message: str, *, instruction: str | None = None, output: list[str] | None = None
    ) -> None:
        self.instruction = instruction
        self.output = output or []
        text = message
        if self.output:
            shown = "\n".join(f"  | {line}" for line in self.output[-OUTPUT_TAIL_LINES:])
            text = f"{message}\n{shown}"
        super().__init__(text)


# How many lines of a failing instruction's output the error message repeats (the stream showed them all).
OUTPUT_TAIL_LINES = 30


class RegistryError(OrchestratorError):
    """A registry refused us, could not be reached, or answered something unusable; names the registry."""

    def __init__(self, registry: str, reason: str) -> None:
        super().__init__(f"registry {registry}: {reason}")
        self.registry = registry
        self.reason = reason


class DigestMismatchError(OrchestratorError):
    """The same build ended up with different digests in different registries: nothing is recorded."""
