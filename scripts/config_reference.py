"""Generate the configuration reference (every key of both file formats) from the models.

`python scripts/config_reference.py` prints the Markdown; `--write` replaces the section of README.md between
the config-reference markers. A test keeps README in step with the models.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from orchestrator.config import Environment, Pipeline
from orchestrator.config.base import models_in
from orchestrator.config.loader import NAME_KEYS

START, END = "<!-- config-reference:start -->", "<!-- config-reference:end -->"
README = Path(__file__).resolve().parent.parent / "README.md"


def _type_name(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *metadata = get_args(annotation)
        if any("parse_duration" in repr(m) for m in metadata):
            return "duration (30s, 5m, 1h)"
        return _type_name(base)
    if isinstance(annotation, type):
        return annotation.__name__ if not issubclass(annotation, BaseModel) else "mapping"
    if origin is list:
        return f"list of {_type_name(get_args(annotation)[0])}"
    if origin is dict:
        return "mapping"
    args = [a for a in get_args(annotation) if a is not type(None)]
    if str(origin).endswith("Literal"):
        return " \\| ".join(repr(a) for a in get_args(annotation))
    if args:
        names = []
        for a in args:
            name = _type_name(a)
            if name not in names:
                names.append(name)
        return " or ".join(names)
    return str(annotation).replace("typing.", "")


def _is_duration(field: FieldInfo) -> bool:
    return any("parse_duration" in repr(m) for m in field.metadata)


def _flow(value: Any) -> str:
    """A default as it would be written in the file (YAML flow style)."""
    if isinstance(value, BaseModel):
        value = value.model_dump(by_alias=True, exclude_none=True, exclude_defaults=False)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if value == "":
        return '""'
    return str(value)


def _default(field: FieldInfo, key: str, name_key: str | None, notes: list[str]) -> str:
    """What the loader puts there when the file leaves the key out."""
    if key == name_key:
        return "the file name"
    if field.is_required():
        return "required"
    if field.default_factory is not None:
        try:
            value = field.default_factory()  # type: ignore[call-arg]
        except TypeError:
            return ""
    else:
        value = field.default
    if value is PydanticUndefined or value is None:
        return ""
    if isinstance(value, list | tuple) and len(value) > 3:
        notes.append(f"Default `{key}`:\n\n" + "".join(f"- `{v}`\n" for v in value))
        return "the list below the table"
    if _is_duration(field) and isinstance(value, int | float):
        return f"`{_flow(value)}s`"
    return f"`{_flow(value)}`"


def _rows(
    model: type[BaseModel],
    prefix: str,
    seen: dict[type[BaseModel], str],
    notes: list[str],
    name_key: str | None = None,
    tag: str | None = None,
) -> list[str]:
    """Rows for `model`'s keys under `prefix`; `tag` is the key that picks `model` out of a union."""
    rows: list[str] = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{field.alias or name}"
        meaning = field.description or ""
        if name == tag:  # its default only names the member: the loader needs it to choose one
            rows.append(f"| `{key}` | {_type_name(field.annotation)} | required | chooses these keys |")
            continue
        subs = models_in(field.annotation)
        repeated = [seen[sub] for sub in subs if sub in seen]
        if repeated:
            meaning = f"{meaning}; same keys as `{repeated[0]}`".lstrip("; ")
        kind = "duration (30s, 5m, 1h)" if _is_duration(field) else _type_name(field.annotation)
        default = _default(field, key, name_key, notes)
        if key == name_key:
            meaning = meaning or "may be left out; when given, it must equal the file name"
        rows.append(f"| `{key}` | {kind} | {default} | {meaning} |")
        for sub in subs:
            if sub in seen:
                continue
            seen[sub] = key
            is_list = get_origin(field.annotation) is list or "list[" in str(field.annotation)
            is_map = "dict[" in str(field.annotation)
            child = f"{key}[]." if is_list else (f"{key}.<name>." if is_map else f"{key}.")
            discriminator = field.discriminator if isinstance(field.discriminator, str) else None
            if discriminator:
                literal = sub.model_fields[discriminator].default
                doc = (sub.__doc__ or "").strip()
                rows.append(f"| `{key}` with `{discriminator}: {literal}` | | | {doc} |")
            rows.extend(_rows(sub, child, seen, notes, tag=discriminator))
    return rows


def reference() -> str:
    header = "| key | type | default | meaning |\n| --- | --- | --- | --- |"
    parts = []
    for title, model in (
        ("pipelines/&lt;service&gt;.yaml", Pipeline),
        ("environments/&lt;env&gt;.yaml", Environment),
    ):
        notes: list[str] = []
        rows = "\n".join(_rows(model, "", {}, notes, NAME_KEYS[model]))
        part = f"#### `{title}`\n\n{(model.__doc__ or '').strip()}\n\n{header}\n{rows}"
        parts.append("\n\n".join([part, *(n.rstrip("\n") for n in notes)]))
    return "\n\n".join(parts) + "\n"


def main() -> None:
    text = reference()
    if "--write" in sys.argv:
        readme = README.read_text()
        before, _, rest = readme.partition(START)
        _, _, after = rest.partition(END)
        README.write_text(f"{before}{START}\n{text}{END}{after}")
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
