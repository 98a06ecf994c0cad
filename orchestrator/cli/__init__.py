"""The `orchestrator` command line: thin wrappers that parse, call one function of a layer, and print.

Each command group lives in its own module and is registered on the root group in `main.py`.
"""

from orchestrator.cli.main import main, run

__all__ = ["main", "run"]
