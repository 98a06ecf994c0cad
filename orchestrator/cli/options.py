"""Options several commands share, declared once."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from orchestrator.settings import ROOT_ENV, project_root

if TYPE_CHECKING:
    from orchestrator.config import Project

F = TypeVar("F", bound=Callable[..., Any])


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
