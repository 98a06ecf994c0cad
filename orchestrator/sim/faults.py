"""Fault injection for one simulated cluster: latency, 5xx and 429 rates, dropped connections, down.

Random draws come from a seeded generator, so a test that injects 20 % errors sees the same sequence
on every run.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from typing import Any


@dataclass(frozen=True)
class FaultConfig:
    latency_ms: float = 0.0  # added before every API response
    error_rate: float = 0.0  # share of requests answered with `error_code`
    error_code: int = 503
    throttle_rate: float = 0.0  # share of requests answered 429 with Retry-After
    retry_after_seconds: int = 1
    drop_rate: float = 0.0  # share of connections closed without a response
    methods: tuple[str, ...] = ()  # only these HTTP methods are affected; empty = all
    down: bool = False  # the endpoint refuses connections

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["methods"] = list(self.methods)
        return out


@dataclass(frozen=True)
class FaultDecision:
    latency_s: float
    action: str | None  # None | "error" | "throttle" | "drop"
    code: int = 0
    retry_after: int = 0


_RATES = ("error_rate", "throttle_rate", "drop_rate")


def parse_fault_config(data: dict[str, Any], base: FaultConfig | None = None) -> FaultConfig:
    """A FaultConfig from JSON, naming the bad key when one is wrong."""
    known = {f.name for f in fields(FaultConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown fault setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key == "methods":
            if not isinstance(value, list | tuple) or not all(isinstance(m, str) for m in value):
                raise ValueError("methods must be a list of HTTP method names")
            values[key] = tuple(m.upper() for m in value)
        elif key == "down":
            if not isinstance(value, bool):
                raise ValueError("down must be true or false")
            values[key] = value
        elif key in ("error_code", "retry_after_seconds"):
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"{key} must be an integer")
            values[key] = value
        else:
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{key} must be a non-negative number")
            if key in _RATES and value > 1:
                raise ValueError(f"{key} must be between 0 and 1")
            values[key] = float(value)
    return replace(base or FaultConfig(), **values)


class Faults:
    """The current fault settings of one cluster; `decide` is asked once per API request."""

    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._config = FaultConfig()
        self._rng = random.Random(seed)
        self._down_listeners: list[Callable[[bool], None]] = []

    @property
    def config(self) -> FaultConfig:
        with self._lock:
            return self._config

    def on_down_change(self, listener: Callable[[bool], None]) -> None:
        self._down_listeners.append(listener)

    def set(self, **settings: Any) -> FaultConfig:
        """Change some settings, keep the others: `faults.set(error_rate=0.2, throttle_rate=0.2)`."""
        return self.replace(parse_fault_config(settings, self.config))

    def replace(self, config: FaultConfig) -> FaultConfig:
        with self._lock:
            was_down = self._config.down
            self._config = config
        if config.down != was_down:
            for listener in self._down_listeners:
                listener(config.down)
        return config

    def clear(self) -> None:
        self.replace(FaultConfig())

    def set_down(self, down: bool = True) -> None:
        self.set(down=down)

    def decide(self, method: str) -> FaultDecision:
        with self._lock:
            cfg = self._config
            if cfg.methods and method.upper() not in cfg.methods:
                return FaultDecision(0.0, None)
            latency = cfg.latency_ms / 1000.0
            draw = self._rng.random()
        if draw < cfg.drop_rate:
            return FaultDecision(latency, "drop")
        draw -= cfg.drop_rate
        if draw < cfg.error_rate:
            return FaultDecision(latency, "error", code=cfg.error_code)
        draw -= cfg.error_rate
        if draw < cfg.throttle_rate:
            return FaultDecision(latency, "throttle", code=429, retry_after=cfg.retry_after_seconds)
        return FaultDecision(latency, None)
