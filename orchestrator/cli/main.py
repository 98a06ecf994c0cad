"""Root command group, error-to-exit-code mapping, and subcommand registration."""

from __future__ import annotations

import sys

import click

from orchestrator import __version__
from orchestrator.errors import OrchestratorError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="orchestrator")
def cli() -> None:
    """AddToCloud Orchestrator: build once, render, commit, roll out progressively across clouds."""


def main(argv: list[str] | None = None) -> None:
    """Run the command line; OrchestratorError becomes a one-line message and its exit code."""
    try:
        cli.main(args=argv, prog_name="orchestrator", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.exceptions.ClickException as exc:
        exc.show()
        sys.exit(2 if isinstance(exc, click.UsageError) else exc.exit_code)
    except OrchestratorError as exc:
        click.secho(f"error: {exc}", fg="red", err=True)
        sys.exit(exc.exit_code)
    sys.exit(0)
