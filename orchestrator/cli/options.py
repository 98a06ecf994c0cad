"""Options several commands share, declared once."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from orchestrator.settings import ROOT_ENV, project_root

if TYPE_CHECKING:
    from orchestrator.config import Project

F = TypeVar("F", bound=Callable[..., Any])

SERVER_ENV = "ORCHESTRATOR_SERVER"
SERVER_META = "orchestrator.server"  # ctx.meta key: the API's base URL given with --server


def server_url() -> str | None:
    """The REST API this command is a client of (`orchestrator --server URL …`), if any."""
    ctx = click.get_current_context(silent=True)
    return ctx.meta.get(SERVER_META) if ctx is not None else None


def root_option(func: F) -> F:
    return click.option(
        "--root",
        envvar=ROOT_ENV,
        default=None,
        metavar="DIR",
        help=f"Project checkout with pipelines/, environments/, templates/ [env {ROOT_ENV}; default: .]",
    )(func)


def set_option(func: F) -> F:
    return click.option(
        "--set",
        "assignments",
        multiple=True,
        metavar="KEY=VALUE",
        help="Override a template value (highest precedence); repeatable, e.g. --set sim.errorRate=0.3",
    )(func)


class ImageReferenceType(click.ParamType):
    """An image reference as Docker writes it (`[registry/]repository[:tag][@sha256:…]`), checked before
    anything runs: a value that is not one is bad usage (exit 2) naming the option and the reason."""

    name = "image reference"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from orchestrator.build.reference import parse_reference

        text = str(value)
        try:
            parse_reference(text)
        except ValueError as exc:
            self.fail(f"not an image reference: {exc}", param, ctx)
        return text


IMAGE_REFERENCE = ImageReferenceType()


def format_option(func: F) -> F:
    return click.option(
        "-o",
        "--output",
        "output",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        help="Output format.",
    )(func)


def open_project(root: str | None) -> Project:
    from orchestrator.config import Project  # pydantic models: loaded to run a command, not for --help

    return Project(project_root(root))
