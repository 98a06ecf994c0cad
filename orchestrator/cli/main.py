"""Root command group, error-to-exit-code mapping, and lazily loaded subcommands.

Subcommands are imported only when used: the cloud SDKs, the kubernetes client and SQLAlchemy cost about a
second to import, which `orchestrator render` should not pay.
"""

from __future__ import annotations

import atexit
import importlib
import os
import sys

import click

from orchestrator import __version__
from orchestrator.cli.auth import token_option
from orchestrator.cli.options import SERVER_ENV, SERVER_META
from orchestrator.errors import OrchestratorError

# name -> "module:attribute" of the click command
COMMANDS: dict[str, str] = {
    "render": "orchestrator.cli.render:render_command",
    "diff": "orchestrator.cli.diff:diff_command",
    "drift": "orchestrator.cli.drift:drift_command",
    "build": "orchestrator.cli.build:build_command",
    "deploy": "orchestrator.cli.rollout:deploy_command",
    "status": "orchestrator.cli.status:status_command",
    "history": "orchestrator.cli.history:history_command",
    "approve": "orchestrator.cli.rollout:approve_command",
    "abort": "orchestrator.cli.rollout:abort_command",
    "pause": "orchestrator.cli.rollout:pause_command",
    "resume": "orchestrator.cli.rollout:resume_command",
    "retry": "orchestrator.cli.rollout:retry_command",
    "promote": "orchestrator.cli.promote:promote_command",
    "rollback": "orchestrator.cli.promote:rollback_command",
    "releases": "orchestrator.cli.releases:releases_command",
    "sim": "orchestrator.cli.sim:sim_group",
    "db": "orchestrator.cli.db:db_group",
    "schema": "orchestrator.cli.schema:schema_command",
    "access": "orchestrator.cli.access:access_group",
    "users": "orchestrator.cli.users:users_group",
    "tokens": "orchestrator.cli.tokens:tokens_group",
    "login": "orchestrator.cli.login:login_command",
    "whoami": "orchestrator.cli.login:whoami_command",
    "serve": "orchestrator.cli.serve:serve_command",
    "worker": "orchestrator.cli.worker:worker_command",
    "stats": "orchestrator.cli.stats:stats_command",
}


# What `--server URL` runs through the REST API; anything else that reads or changes the state database is
# refused with --server rather than run against a local database the user did not mean.
REMOTE_COMMANDS = frozenset(
    {
        "deploy",
        "promote",
        "rollback",
        "releases",
        "status",
        "history",
        "stats",
        "drift",
        "approve",
        "abort",
        "pause",
        "resume",
        "retry",
        "users",
        "access",
        "tokens",
        "whoami",
        "login",
    }
)
LOCAL_COMMANDS = frozenset({"render", "diff", "build", "sim", "schema", "serve"})  # no state database

HELP_OPTIONS = frozenset({"-h", "--help"})
HELP_ONLY = "orchestrator.help_only"  # ctx.meta key: a subcommand will only print its help


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:  # noqa: ARG002
        return sorted(COMMANDS)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        rest = super().parse_args(ctx, args)
        ctx.meta[HELP_ONLY] = not HELP_OPTIONS.isdisjoint(rest)
        return rest

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:  # noqa: ARG002
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attribute = target.split(":")
        command: click.Command = getattr(importlib.import_module(module), attribute)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": sorted(HELP_OPTIONS)})
@click.version_option(__version__, prog_name="orchestrator")
@click.option(
    "--log-level",
    envvar="ORCHESTRATOR_LOG_LEVEL",
    default="warning",
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    help="Log verbosity on stderr [env ORCHESTRATOR_LOG_LEVEL].",
)
@token_option  # `orchestrator --token T deploy …`; a subcommand's own --token, given after it, wins
@click.option(
    "--server",
    envvar=SERVER_ENV,
    default=None,
    metavar="URL",
    help=(
        f"Be a client of the orchestrator's REST API at URL (deploy, promote, rollback, releases, status, "
        f"history, the rollout controls, users, access, tokens, login and whoami), with the same output "
        f"and exit codes [env {SERVER_ENV}]."
    ),
)
@click.pass_context
def cli(ctx: click.Context, log_level: str, server: str | None) -> None:
    """AddToCloud Orchestrator: build once, render, commit, roll out progressively across clouds."""
    if server:
        ctx.meta[SERVER_META] = server.rstrip("/")
        command = ctx.invoked_subcommand
        if command is not None and command not in REMOTE_COMMANDS | LOCAL_COMMANDS:
            raise click.UsageError(
                f"`{command}` does not run through the server; with --server (or {SERVER_ENV}) only "
                f"{', '.join(sorted(REMOTE_COMMANDS))} do. Run it without --server on the server's machine."
            )
    if ctx.meta.get(HELP_ONLY):
        return  # the subcommand only prints its help: no logging to set up
    from orchestrator.logs import configure_logging

    configure_logging(log_level)


# The exit status `run` ends the process with: 1 until `main` says otherwise (an exception that escapes
# it has Python print its traceback and exit 1).
_exit_status = 1


def run() -> None:
    """The `orchestrator` program: `main`, then the process ends without the interpreter's teardown.

    Tearing the interpreter down frees every module and object one by one: after a render of a large
    estate that is a tenth of a second, for output already written. Like a Go or Rust program, the
    process instead ends once its work is done: `_end_process` is registered first, so it runs after
    every other exit handler (Python runs them last registered first) and after Python has waited for
    the threads still running; it flushes the standard streams and ends with `main`'s exit status.
    Tests that call `main` in their own process are unaffected.
    """
    global _exit_status
    atexit.register(_end_process)
    try:
        main()
    except SystemExit as exit:
        _exit_status = _status_of(exit.code)
        raise
    except KeyboardInterrupt:
        _exit_status = 130  # as a shell reports a command ended by Ctrl-C
        raise
    _exit_status = 0


def _status_of(code: object) -> int:
    """The exit status Python gives `SystemExit(code)`: None is 0, a number itself, anything else 1."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    return 1


def _end_process() -> None:
    status = _exit_status
    if "logging" in sys.modules:  # its own exit handler may have been registered before this one
        import logging

        logging.shutdown()
    for stream, failed in ((sys.stdout, 120), (sys.stderr, None)):
        try:
            stream.flush()
        except Exception:  # a closed pipe: Python itself exits 120 when stdout cannot be flushed
            if failed is not None and status == 0:
                status = failed
    os._exit(status)


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
