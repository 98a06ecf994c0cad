"""What a running server works with: the project checkout, the state folder and the state database."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ServerSettings:
    root: Path  # the project checkout: pipelines/, environments/, templates/
    state_dir: Path
    database_url: str
