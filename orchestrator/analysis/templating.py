"""`{{placeholders}}` in queries, conditions, URLs: plain substitution, as Argo Rollouts does it.

Only names are substituted — `{{service}}`, `{{args.min-success-rate}}` — never expressions, so a template
cannot run code. Argument names may contain `-` (Argo's convention), which is why this is not Jinja.
An unknown name is an error that lists the known ones.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ARG = re.compile(r"^args\.([A-Za-z0-9_][A-Za-z0-9_.-]*)$")


class TemplateError(ValueError):
    """A placeholder that names nothing known, or template syntax this substitution does not support."""


def render_template(
    text: str, variables: Mapping[str, str], args: Mapping[str, str], *, where: str = "template"
) -> str:
    """`text` with every `{{name}}` / `{{args.name}}` replaced; TemplateError names the placeholder."""

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1).strip()
        arg = _ARG.match(name)
        if arg:
            key = arg.group(1)
            if key not in args:
                known = ", ".join(sorted(args)) or "none"
                raise TemplateError(f"{where}: unknown argument {{{{args.{key}}}}}; arguments given: {known}")
            return args[key]
        if _NAME.match(name) and name in variables:
            return variables[name]
        known = ", ".join(sorted(variables))
        raise TemplateError(f"{where}: unknown placeholder {{{{{name}}}}}; use one of {known} or args.<name>")

    rendered = _PLACEHOLDER.sub(substitute, text)
    for marker in ("{{", "{%", "{#"):
        if marker in rendered:
            raise TemplateError(f"{where}: unclosed or unsupported template syntax near {marker!r}")
    return rendered


def placeholders(text: str) -> list[str]:
    """The names used in `text` (`service`, `args.window`), in order of appearance."""
    return [m.group(1).strip() for m in _PLACEHOLDER.finditer(text)]
