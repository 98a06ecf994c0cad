"""The templates' YAML output read by yaml-rs (Rust), only where the answer is provably PyYAML's.

Parsing rendered templates is most of rendering's cost, and PyYAML's floor is its composer making
Python objects per scalar. yaml-rs parses the same text about three times faster, but it reads YAML
1.2 (and resolves some numbers its own way: `_1` and `1_000` are integers, `.nAn` a float), while
PyYAML, like the go-yaml kubectl uses, reads YAML 1.1: `yes`/`on` are booleans, `012` is 10, `1:30` is
90, `1e3` a string, `2001-01-01` a date. So yaml-rs is used only for text that cannot hold anything the
two read differently, and every other text, and every error, is PyYAML's to read (`fast_documents`
answers None). "Cannot hold" is decided conservatively, by looking at the text rather than parsing it:

- every *word* (a run of characters after whitespace, a flow indicator, a quote, `#` or `:`) that
  could be a scalar the two resolve differently makes the text ineligible, wherever it stands (in a
  quoted string or after a comment's `#` too, which only costs the fast path): numbers other than
  plain decimal integers and decimals, the YAML 1.1 booleans, the one-letter y/n, `<<` and `=`,
  anything that starts like a date; `true`, `false`, `null` and `~` read alike in both. Lines whose
  first character after the indent is `#` are not searched: such a line is a comment, or the content
  of a block or quoted scalar (a plain scalar cannot go on past a comment), so nothing on it is
  resolved, and configuration files' comments ("served on 8080") no longer cost the fast path;
- so does a tag (`!`), anchor (`&`) or alias (`*`), a `?` starting a word (an explicit key), a
  collection used as a key (`]:` or `}:`), a directive (`%` at a line start), a backslash, tab,
  carriage return, the line breaks YAML 1.2 dropped (NEL, U+2028/9), a byte-order mark, any document
  marker but a line holding `---` alone, and text not ending with a line break; the text is cut at
  the `---` lines into documents, parsed one at a time;
- yaml-rs refuses duplicate keys (PyYAML keeps the last), and a document whose top is not a mapping
  or empty is handed back too (nothing rendering needs, and the shape a mis-split would show);
- what yaml-rs accepted is also parsed by libyaml itself (`CParser.raw_parse`, events only, no Python
  objects): any syntax libyaml rejects goes to PyYAML, which raises its own error for it. A caller
  whose loader parses with another libyaml (ruamel.yaml.clib bundles 0.1.7, which refuses a `:` inside a
  flow scalar that 0.2.5 takes) passes that parser's check instead.

`tests/unit/test_render_yaml_fast.py` holds this to PyYAML with generated documents.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import yaml_rs
from yaml._yaml import CParser  # libyaml's parser: documents.py goes without this path where it is missing

# A word starts at the start of a line or after one of these; it ends before one of these (after any
# colons, so a key's word is checked too). More boundaries only mean more words checked.
_START = r"(?<![^\s,\[\]{}\"'#:])"
_END = r":*(?=[\s,\[\]{}\"'#]|\Z)"
# Read alike by both: decimal integers and decimals without sign, exponent or underscore, short enough
# to be exact machine integers in yaml-rs.
_SAFE_NUMBER = r"-?(?:0|[1-9][0-9]{0,17})(?:\.[0-9]{1,17})?"

# Searched line by line (no word, indicator or marker below spans a line break).
_INELIGIBLE_LINE = re.compile(
    "|".join(
        (
            # anything number-like but a safe number: octal, hex, binary, underscores, sexagesimal,
            # exponents, a sign or a leading dot, .inf/.nan in any case
            _START + r"(?!" + _SAFE_NUMBER + _END + r")[-+._]*[0-9][0-9a-fA-FxXoO_:.+-]*" + _END,
            _START + r"[-+_]*\.[A-Za-z]",
            _START + r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}",  # a date or timestamp, however it goes on
            _START + r"(?:[Yy]es|YES|[Nn]o|NO|[Oo]n|ON|[Oo]ff|OFF|[yYnN]|<<|=)" + _END,
            # a tag, anchor or alias (after a quote, as in `["*"]`, a `*` is text: an alias cannot be there)
            r"(?<![^\s,\[\]{}:])[!&*]",
            _START + r"\?",  # an explicit key (in a flow collection, `?x` is one too)
            r"[\]}]\s*:",  # a flow collection as a key (PyYAML: unhashable)
            r"\A%",  # a directive
            r"\A(?:\.\.\.|---(?!\Z))",  # document markers other than a bare `---` line
        )
    )
)
# Anywhere in the text: escapes, tabs, carriage returns, the line breaks YAML 1.2 dropped, a BOM.
_INELIGIBLE_CHARACTERS = ("\\", "\t", "\r", "\x85", "\u2028", "\u2029", "\ufeff")
_DOCUMENT_START = re.compile(r"^---(?:\n|\Z)", re.MULTILINE)
_BLANK_OR_COMMENT = re.compile(r"(?:[ ]*(?:#[^\n]*)?(?:\n|\Z))*\Z")

# Lines already found eligible. Templates' output repeats its lines (keys, labels, names) across objects
# and sets, so most lines are looked up rather than searched. Bounded, not an LRU: cleared when full.
_eligible_lines: set[str] = set()
_ELIGIBLE_LINES_LIMIT = 200_000


def _eligible(text: str) -> bool:
    for character in _INELIGIBLE_CHARACTERS:
        if character in text:
            return False
    known = _eligible_lines
    for line in text.split("\n"):
        if line not in known:
            if not line.lstrip(" ").startswith("#") and _INELIGIBLE_LINE.search(line):
                return False
            if len(known) >= _ELIGIBLE_LINES_LIMIT:
                known.clear()
            known.add(line)
    return True


def syntax_check(parser: Any) -> Callable[[str], bool]:
    """A parser class's own syntax check (its `raw_parse`: events only, no Python objects) as a function."""

    def accepts(text: str) -> bool:
        try:
            parser(text).raw_parse()
        except Exception:  # whatever the parser raises, it refuses the text
            return False
        return True

    return accepts


libyaml_accepts = syntax_check(CParser)  # as PyYAML's C loader would meet the text


def fast_documents(text: str, accepts: Callable[[str], bool] = libyaml_accepts) -> list[Any] | None:
    """Every document in `text` as `list(yaml.load_all(text, Loader=CSafeLoader))` returns them, or
    None when this path cannot vouch for that answer (then PyYAML must read the text). `accepts` is the
    syntax check of the parser whose answer this stands in for."""
    if not _eligible(text) or (text and not text.endswith("\n")):
        # (without a final line break, a block scalar ending the text keeps none in libyaml, one in yaml-rs)
        return None
    # Most templates write one document and no marker: no need to search for one with a regex.
    pieces = _DOCUMENT_START.split(text) if text.startswith("---") or "\n---" in text else [text]
    documents: list[Any] = []
    for index, piece in enumerate(pieces):
        try:
            document = yaml_rs.loads(piece, parse_datetime=False)
        except Exception:  # yaml-rs's refusal, whatever it is: PyYAML decides and explains
            return None
        if document is None:
            if index == 0:
                # Before the first `---`, only content is a document: blank lines and comments are none,
                # while a lone `null` or `~` is one (a None).
                if _BLANK_OR_COMMENT.match(piece):
                    continue
                return None
        elif type(document) is not dict:
            return None
        documents.append(document)
    return documents if accepts(text) else None
