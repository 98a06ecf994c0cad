"""Generated YAML streams for the fast-path tests: scalars YAML 1.1 and 1.2 read differently, placed in
block and flow collections, documents joined by every kind of marker, and broken copies of them."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import strategies as st


def same(mine: Any, theirs: Any) -> bool:
    """Equal, with the same types all the way down, keys in the same order, floats alike to the bit."""
    if type(mine) is not type(theirs):
        return False
    if isinstance(mine, dict):
        return list(mine) == list(theirs) and all(
            same(a, b) and same(mine[a], theirs[b]) for a, b in zip(mine, theirs, strict=True)
        )
    if isinstance(mine, list):
        return len(mine) == len(theirs) and all(same(a, b) for a, b in zip(mine, theirs, strict=True))
    if isinstance(mine, float):
        return (math.isnan(mine) and math.isnan(theirs)) or (mine == theirs and repr(mine) == repr(theirs))
    return bool(mine == theirs)


# Scalars the two YAML versions read differently, the ones they read alike, and ordinary text.
RISKY_WORDS = [
    "yes", "Yes", "YES", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF", "y", "Y", "n", "N",
    "true", "True", "TRUE", "false", "False", "FALSE", "tRUE", "null", "Null", "NULL", "nUll", "~",
    "0", "-0", "+0", "7", "-7", "+7", "012", "08", "0o12", "0O7", "0b101", "-0b1", "0x1F", "-0x1f", "0X1F",
    "1_000", "_1", "1_", "1:30", "-1:30", "190:20:30", "1.5:2", "1e3", "1E3", "1e+3", "1.0e3", "1.0e+3",
    "1.5", "-1.5", "+1.5", "1.", ".5", "-.5", "+.5", "._5", "1_000.5", ".inf", "-.Inf", "+.INF", ".nan",
    ".NaN", ".nAn", "inf", "nan", "Infinity", "1.0", "-0.0", "0.0", "100", "8080", "3.14159",
    "12345678901234567890", "123456789012345678", "9.99999999999999999999", "1.2.3", "10.0.0.1",
    "2001-12-14", "2001-12-14t21:59:43.10-05:00", "2001-12-14 21:59:43.10 -5", "2001-1-1", "<<", "=",
    "500m", "128Mi", "v1", "sha256:abc", "a:b", "a,b", "x-y", "-", "--", "-x", "?x", ":x", "a#b",
    "svc-000", "addtocloud.io/version", "ClusterIP", "TCP", "ALL", "http://x/y?q=1&r=2", "*.example.com",
]  # fmt: skip
WORD = st.one_of(
    st.sampled_from(RISKY_WORDS),
    st.text(alphabet="abcxyzAZ019._-:/+~=", min_size=1, max_size=8),
)
ESCAPES = ["\\n", "\\t", "\\\\", '\\"', "\\x41", "\\u263a", "\\/", "\\ ", "\\0", "\\e", "\\N", "\\_"]


@st.composite
def scalars(draw: st.DrawFn) -> str:
    word = draw(WORD)
    style = draw(st.sampled_from(["plain", "plain", "plain", "single", "double", "words", "escaped"]))
    if style == "single":
        return "'" + word.replace("'", "''") + "'"
    if style == "double":
        return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if style == "escaped":
        return '"' + word + draw(st.sampled_from(ESCAPES)) + '"'
    if style == "words":
        return word + " " + draw(WORD)
    return word


@st.composite
def flow(draw: st.DrawFn, depth: int = 0) -> str:
    """A flow collection or scalar, on one line."""
    if depth >= 2 or draw(st.booleans()):
        return draw(scalars())
    items = draw(st.lists(st.deferred(lambda: flow(depth + 1)), max_size=3))
    if draw(st.booleans()):
        return "[" + ", ".join(items) + "]"
    keys = draw(st.lists(scalars(), min_size=len(items), max_size=len(items)))
    return "{" + ", ".join(f"{k}: {v}" for k, v in zip(keys, items, strict=True)) + "}"


@st.composite
def block(draw: st.DrawFn, indent: int = 0, depth: int = 0) -> str:
    """A block mapping or sequence at `indent`, ending with a newline."""
    pad = " " * indent
    lines: list[str] = []
    as_sequence = draw(st.booleans())
    for _ in range(draw(st.integers(1, 4))):
        head = pad + ("- " if as_sequence else draw(scalars()) + ":")
        if as_sequence and draw(st.booleans()) and depth < 3:  # a mapping inside the item, compact
            inner = draw(block(indent + 2, depth + 1)).lstrip(" ")
            lines.append(head + inner.rstrip("\n"))
            continue
        kind = draw(
            st.sampled_from(
                [
                    "flow",
                    "flow",
                    "nested",
                    "literal",
                    "folded",
                    "empty",
                    "comment",
                    "anchor",
                    "lines",
                    "wrapped",
                    "comment line",
                ]
            )
        )
        if kind == "nested" and depth < 3:
            lines.append(head.rstrip(" "))
            lines.append(draw(block(indent + 2, depth + 1)).rstrip("\n"))
        elif kind in ("literal", "folded"):
            indicator = draw(st.sampled_from(["", "-", "+", "2"]))
            lines.append(
                head + (" " if not as_sequence else "") + ("|" if kind == "literal" else ">") + indicator
            )
            for text in draw(st.lists(WORD, min_size=1, max_size=3)):
                lines.append(pad + "  " + draw(st.sampled_from(["", "# "])) + text)
        elif kind == "lines":  # a plain or quoted scalar over several lines, blank ones too
            quote = draw(st.sampled_from(["", "'", '"']))
            parts = draw(st.lists(st.one_of(WORD, WORD.map(lambda w: "# " + w)), min_size=2, max_size=3))
            joiner = "\n" + draw(st.sampled_from(["", "\n"])) + pad + "  "
            lines.append(
                head + " " + quote + joiner.join(p.replace("'", "").replace('"', "") for p in parts) + quote
            )
        elif kind == "wrapped":  # a flow collection over several lines
            items = draw(st.lists(flow(), min_size=1, max_size=3))
            lines.append(head + " [" + (",\n" + pad + "  ").join(items) + "]")
        elif kind == "comment line":  # a line holding only a comment, at any indent, then the entry
            lines.append(
                pad + draw(st.sampled_from(["", "  ", " "])) + "#" + draw(st.sampled_from(["", " "]))
            )
            lines[-1] += draw(WORD)
            lines.append(head + (" " if not as_sequence else "") + draw(flow()))
        elif kind == "empty":
            lines.append(head.rstrip(" "))
        elif kind == "comment":
            lines.append(head + (" " if not as_sequence else "") + draw(flow()) + " # " + draw(WORD))
        elif kind == "anchor":
            lines.append(
                head
                + (" " if not as_sequence else "")
                + draw(st.sampled_from(["&a ", "*a", "!!str ", "!x "]))
                + draw(scalars())
            )
        else:
            lines.append(head + (" " if not as_sequence else "") + draw(flow()))
    return "\n".join(lines) + "\n"


@st.composite
def streams(draw: st.DrawFn) -> str:
    documents = draw(st.lists(st.one_of(block(), flow().map(lambda t: t + "\n")), min_size=1, max_size=3))
    separators = st.sampled_from(["---\n", "---\n", "--- \n", "...\n---\n", "---\n# c\n", "\n"])
    text = draw(st.sampled_from(["", "---\n", "# head\n", "%YAML 1.1\n---\n"]))
    for index, document in enumerate(documents):
        text += (draw(separators) if index else "") + document
    if draw(st.booleans()):
        text += draw(st.sampled_from(["---\n", "...\n", "---", "\n\n", "# tail"]))
    return text


@st.composite
def mutated(draw: st.DrawFn) -> str:
    """A stream with a few characters changed: mostly not YAML any more, which must fail as PyYAML fails."""
    text = draw(streams())
    for _ in range(draw(st.integers(1, 3))):
        if not text:
            break
        at = draw(st.integers(0, len(text) - 1))
        text = (
            text[:at]
            + draw(st.sampled_from([":", " ", "\n", "-", "[", "}", "'", '"', "#", "  ", ""]))
            + text[at + 1 :]
        )
    return text
