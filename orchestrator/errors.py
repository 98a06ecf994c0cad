"""Error types with messages written for the person at the keyboard.

Every error the command line reports is one of these. The exit code is part of the type:
2 for bad usage or configuration (nothing was applied), 1 for an operation that failed.
"""

from __future__ import annotations


class OrchestratorError(Exception):
    """An operation failed (exit code 1)."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(OrchestratorError):
    """Bad configuration or usage (exit code 2): names the file, line and key at fault."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        key: str | None = None,
    ) -> None:
        self.file = file
        self.line = line
        self.key = key
        where = ""
        if file:
            where = file + (f":{line}" if line else "")
        if key:
            where = f"{where}: {key}" if where else key
        super().__init__(f"{where}: {message}" if where else message)
        self.reason = message


class UnknownNameError(ConfigError):
    """A service, environment or cluster name that does not exist; lists the known ones."""

    def __init__(self, kind: str, name: str, known: list[str]) -> None:
        listing = ", ".join(sorted(known)) or "none"
        super().__init__(f"unknown {kind} {name!r}; known {kind}s: {listing}")
        self.kind = kind
        self.name = name
        self.known = known
