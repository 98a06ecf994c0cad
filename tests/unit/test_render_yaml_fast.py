"""yaml-rs's fast path gives PyYAML's answer exactly, or no answer: generated YAML against the library."""

from __future__ import annotations

import math
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from orchestrator.render.documents import load_documents
from orchestrator.render.yaml_fast import fast_documents

_SafeLoader: Any = yaml.CSafeLoader


def pyyaml(text: str) -> list[Any]:
    return list(yaml.load_all(text, Loader=_SafeLoader))


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
                lines.append(pad + "  " + text)
        elif kind == "lines":  # a plain or quoted scalar over several lines, blank ones too
            quote = draw(st.sampled_from(["", "'", '"']))
            parts = draw(st.lists(WORD, min_size=2, max_size=3))
            joiner = "\n" + draw(st.sampled_from(["", "\n"])) + pad + "  "
            lines.append(
                head + " " + quote + joiner.join(p.replace("'", "").replace('"', "") for p in parts) + quote
            )
        elif kind == "wrapped":  # a flow collection over several lines
            items = draw(st.lists(flow(), min_size=1, max_size=3))
            lines.append(head + " [" + (",\n" + pad + "  ").join(items) + "]")
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


def outcome(load: Any, text: str) -> tuple[str, Any]:
    try:
        return ("value", load(text))
    except Exception as exc:
        return (type(exc).__name__, str(exc))


def assert_as_pyyaml(text: str) -> None:
    theirs = outcome(pyyaml, text)
    fast = fast_documents(text)
    if fast is not None:  # an answer from yaml-rs must be PyYAML's answer, for text PyYAML accepts
        assert theirs[0] == "value", f"fast path answered where PyYAML raises {theirs}"
        assert same(fast, theirs[1]), f"{fast!r} != {theirs[1]!r}"
    mine = outcome(load_documents, text)
    assert mine[0] == theirs[0]
    assert same(mine[1], theirs[1]) if mine[0] == "value" else mine[1] == theirs[1]


PROPERTY = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(streams())
@example("a: 1\n---\n")
@example("---\nnull\n")
@example("# only\n---\n~\n")
def test_generated_streams_load_as_pyyaml_loads_them(text: str) -> None:
    assert_as_pyyaml(text)


@PROPERTY
@given(mutated())
def test_broken_streams_fail_as_pyyaml_fails(text: str) -> None:
    assert_as_pyyaml(text)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(RISKY_WORDS),
    st.sampled_from(["a: {}\n", "{}: a\n", "- {}\n", "[{}]\n", "{{a: {}}}\n", "{{{}: a}}\n"]),
)
def test_every_risky_word_in_every_place(word: str, place: str) -> None:
    assert_as_pyyaml(place.format(word))


@pytest.mark.parametrize(
    "text",
    [
        "a: yes\n",
        "a: 012\n",
        "a: 1:30\n",
        "a: 1e3\n",
        "a: -.5\n",
        "a: 2001-12-14\n",
        "a: 1_000\n",
        "a: _1\n",
        "a: &x 1\nb: *x\n",
        "a: !!str 1\n",
        "<<: {a: 1}\n",
        "=: 1\n",
        "? a\n: 1\n",
        "[a]: 1\n",
        "%YAML 1.1\n---\na: 1\n",
        "--- a: 1\n",
        "a: 1\n...\n",
        'a: "\\x41"\n',
        "a:\tb\n",
        "a: b\r\n",
        "\ufeffa: 1\n",
        "a: 1\na: 2\n",
        "- 1\n",
        "x\n",
    ],
)
def test_what_the_two_may_read_differently_goes_to_pyyaml(text: str) -> None:
    assert fast_documents(text) is None
    assert_as_pyyaml(text)


def test_rendered_manifests_take_the_fast_path() -> None:
    text = (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\n  labels: {version: v3f9a}\n"
        "spec:\n  replicas: 3\n  template:\n    spec:\n      containers:\n        - name: api\n"
        '          image: "ghcr.io/addtocloud/api:1.0"\n          ports: [{containerPort: 8080}]\n'
        '          resources: {limits: {cpu: 500m, memory: 128Mi}}\n          args: ["*"]\n'
        "          ratio: 0.5\n          enabled: true\n          script: |\n            echo hi\n---\n"
    )
    assert fast_documents(text) is not None
    assert_as_pyyaml(text)
