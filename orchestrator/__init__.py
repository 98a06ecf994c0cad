"""AddToCloud Orchestrator: build once, render, commit, roll out progressively across clouds."""

__version__ = "0.1.0"
