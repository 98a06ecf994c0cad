"""Read YAML files fast, and still name the line of every configuration error.

A file is read with ruamel.yaml's safe loader (YAML 1.2, on libyaml's C parser when ruamel.yaml.clib is
installed): plain data, five times faster than the round-trip loader. Only when a line is needed (a
validation error to place) is the text parsed again with the round-trip loader, which records where each
key and list item starts; `locate` walks an error's location (a tuple of keys and indices) back to the
closest line. Both loaders are ruamel's, so both read YAML 1.2 the same way (`yes` and `10:30` are
strings, `017` is 17); PyYAML's loaders read YAML 1.1 and would not.

Before ruamel, `yaml_fast` is asked: it answers (through yaml-rs, about ten times faster than ruamel's
safe loader, whose constructor is pure Python) only for text holding nothing that YAML 1.1 and 1.2 read
differently and that the safe loader's own parser accepts, so its answer is the safe loader's too;
anything else, and every error, is ruamel's. `tests/unit/test_config_source.py` holds the two to each
other with generated files.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from orchestrator.errors import ConfigError

try:
    from orchestrator.yaml_fast import fast_documents, syntax_check
except ImportError:  # PyYAML built without libyaml: yaml_fast goes without it
    fast_documents = None  # type: ignore[assignment]

# The parser ruamel's safe loader runs: libyaml 0.1.7 from ruamel.yaml.clib, or ruamel's own in Python.
_SAFE_PARSER: Any = YAML(typ="safe").Parser
if fast_documents is not None and hasattr(_SAFE_PARSER, "raw_parse"):
    _safe_parser_accepts = syntax_check(_SAFE_PARSER)
else:  # the pure-Python parser: no quick syntax check to ask
    fast_documents = None  # type: ignore[assignment]


@dataclass(frozen=True)
class YamlDocument:
    """One parsed file: plain data for validation, and (on demand) the ruamel tree that knows lines."""

    path: Path
    display_path: str
    text: str
    plain: Any  # what the safe loader read (or the round-trip tree, when only that loader accepts the text)

    def data(self) -> Any:
        """A fresh plain copy (callers fill in defaults on it)."""
        return _plain(self.plain)

    @cached_property
    def tree(self) -> Any:
        """The round-trip tree, parsed the first time a line is asked for: the fast path never needs it.
        Text only libyaml accepts (a tab after `key:`) has no tree, and so no lines to give."""
        try:
            return _round_trip(self.text, self.display_path)
        except ConfigError:
            return CommentedMap()

    def line_of(self, location: Sequence[str | int]) -> int | None:
        return locate(self.tree, location)

    def error(self, message: str, location: Sequence[str | int] = ()) -> ConfigError:
        return ConfigError(
            message,
            file=self.display_path,
            line=self.line_of(location),
            key=format_location(location) or None,
        )


def load_yaml(path: Path, display_path: str | None = None) -> YamlDocument:
    """Parse one YAML file; syntax errors become a ConfigError naming the file and line."""
    shown = display_path or str(path)
    text = read_text(path, shown)
    fast = fast_documents(text, _safe_parser_accepts) if fast_documents is not None else None
    try:
        if fast is not None and len(fast) <= 1:  # (more documents: ruamel's error says a file holds one)
            plain = fast[0] if fast else None
        else:
            plain = YAML(typ="safe").load(text)
    except YAMLError:
        # The round-trip loader decides, as it always has: it words syntax errors as the project's
        # messages do, and it accepts what the safe loader has no constructor for (tags, complex keys),
        # which validation then names.
        plain = _round_trip(text, shown)
    if plain is None:
        plain = {}
    return YamlDocument(path=path, display_path=shown, text=text, plain=plain)


def _round_trip(text: str, shown: str) -> Any:
    try:
        tree = YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(f"YAML syntax error: {problem}", file=shown, line=line) from None
    except YAMLError as exc:
        # Not marked: the reader refusing a character YAML does not allow (a NUL, a control character).
        position = getattr(exc, "position", None)
        line = text.count("\n", 0, position) + 1 if isinstance(position, int) else None
        character = getattr(exc, "character", None)  # ruamel's ReaderError: the character's code point
        if isinstance(character, int):
            problem = f"character U+{character:04X} is not allowed in YAML"
        else:
            problem = str(exc).split("\n", 1)[0]
        raise ConfigError(f"YAML syntax error: {problem}", file=shown, line=line) from None
    return CommentedMap() if tree is None else tree


def read_text(path: Path, shown: str | None = None) -> str:
    """A configuration or template file's text; one that is missing or not UTF-8 is a ConfigError naming
    the file, the line and the column of the first bad byte."""
    shown = shown or str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError("file not found", file=shown) from None
    except IsADirectoryError:
        raise ConfigError("is a folder, not a file", file=shown) from None
    except OSError as exc:  # permissions, a broken link
        raise ConfigError(f"cannot be read: {exc.strerror or exc}", file=shown) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise decode_error(exc, raw, shown) from None


def decode_error(exc: UnicodeDecodeError, raw: bytes, shown: str) -> ConfigError:
    """The ConfigError for text that is not UTF-8: the bad byte's value, line and column."""
    line = raw.count(b"\n", 0, exc.start) + 1
    column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
    return ConfigError(
        f"not UTF-8 text: byte 0x{raw[exc.start]:02x} at column {column} (save the file as UTF-8)",
        file=shown,
        line=line,
    )


def format_location(location: Sequence[str | int]) -> str:
    """('clusters', 0, 'weight') -> 'clusters[0].weight'."""
    out = ""
    for part in location:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def locate(tree: Any, location: Sequence[str | int]) -> int | None:
    """Line (1-based) of the deepest element of `location` found in the ruamel tree."""
    node = tree
    line: int | None = _own_line(tree)
    for part in location:
        if isinstance(node, CommentedMap) and part in node:
            with contextlib.suppress(KeyError, TypeError):
                line = node.lc.key(part)[0] + 1
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            with contextlib.suppress(KeyError, TypeError):
                line = node.lc.item(part)[0] + 1
            node = node[part]
        else:
            break
    return line


def _own_line(node: Any) -> int | None:
    lc = getattr(node, "lc", None)
    if lc is None or lc.line is None:
        return None
    return int(lc.line) + 1


def _plain(node: Any) -> Any:
    """Convert ruamel's commented containers and scalars into plain Python values."""
    if isinstance(node, CommentedMap | dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, CommentedSeq | list):
        return [_plain(v) for v in node]
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    return node
