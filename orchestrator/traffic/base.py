"""The interface every traffic router implements (Istio today; Gateway API could follow)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class HeaderMatch:
    name: str
    kind: str  # exact | prefix | regex
    value: str


class TrafficRouter(Protocol):
    def set_weight(self, canary_weight: int) -> bool:
        """Send canary_weight % to the canary, the rest to stable; True when a write was made."""

    def current_weight(self) -> int: ...

    def set_canary_version(self, version: str) -> bool:
        """Point the canary subset at pods of `version`; True when a write was made."""

    def set_header_route(self, name: str, matches: list[HeaderMatch]) -> bool: ...

    def set_mirror(self, name: str, percentage: float) -> bool: ...

    def remove_managed_routes(self) -> bool: ...
