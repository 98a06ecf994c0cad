"""Root command group, error-to-exit-code mapping, and subcommand registration."""

from __future__ import annotations

import sys

import click

from orchestrator import __version__
from orchestrator.errors import OrchestratorError
from orchestrator.logs import configure_logging


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="orchestrator")
@click.option(
    "--log-level",
    envvar="ORCHESTRATOR_LOG_LEVEL",
    default="warning",
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    help="Log verbosity on stderr [env ORCHESTRATOR_LOG_LEVEL].",
)
def cli(log_level: str) -> None:
    """AddToCloud Orchestrator: build once, render, commit, roll out progressively across clouds."""
    configure_logging(log_level)


def _register() -> None:
    from orchestrator.cli.db import db_group
    from orchestrator.cli.history import history_command
    from orchestrator.cli.render import render_command
    from orchestrator.cli.rollout import (
        abort_command,
        approve_command,
        deploy_command,
        pause_command,
        resume_command,
        retry_command,
        status_command,
    )
    from orchestrator.cli.schema import schema_command
    from orchestrator.cli.sim import sim_group

    commands = [render_command, schema_command, db_group, history_command, sim_group, deploy_command]
    commands += [status_command, approve_command, abort_command, pause_command, resume_command, retry_command]
    for command in commands:
        cli.add_command(command)


_register()


def main(argv: list[str] | None = None) -> None:
    """Run the command line; OrchestratorError becomes a one-line message and its exit code."""
    try:
        code = cli.main(args=argv, prog_name="orchestrator", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.exceptions.ClickException as exc:
        exc.show()
        sys.exit(2 if isinstance(exc, click.UsageError) else exc.exit_code)
    except OrchestratorError as exc:
        click.secho(f"error: {exc}", fg="red", err=True)
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)
