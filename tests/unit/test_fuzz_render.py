"""`orchestrator render` on mutated pipeline, environment and template files: exit 0 or 2, never a traceback.

Each example makes one small mutation that people (or editors) really make — a flipped byte, a deleted line,
a renamed key, a line indented wrongly, bytes that are not UTF-8, a broken Jinja tag, an undefined name — to
one file of a copy of the reference estate, and runs the command line's own `main()` in process (the same
exit-code mapping as the installed `orchestrator`, without a process start per example).
"""

from __future__ import annotations

import contextlib
import io
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.cli.main import main
from tests.helpers import copy_estate

# The files a mutation may hit: what `render api --env local` reads.
FILES = (
    "pipelines/api.yaml",
    "environments/local.yaml",
    "templates/k8s/deployment.yaml.j2",
    "templates/k8s/service.yaml.j2",
    "templates/istio/virtualservice.yaml.j2",
    "templates/istio/destinationrule.yaml.j2",
)
JINJA_BREAKS = ("{% if %}", "{{ ", "{% endfor %}", "{% for x in %}", "}}", "{{ values.port | nosuchfilter }}")
UNDEFINED = ("{{ values.nosuchvalue }}", "{{ nosuchname }}", "{{ cluster.nosuch.deeper }}")
NOT_UTF8 = (b"\xff", b"\xe9", b"\xc3\x28", b"\xed\xa0\x80", b"\x80abc")
KEY = re.compile(rb"^(\s*-?\s*)([A-Za-z][A-Za-z0-9]*)(:)", re.MULTILINE)
# A message names a file of the project, optionally with a line: `error: environments/local.yaml:8: ...`.
NAMES_A_FILE = re.compile(r"^error: [^\s:]*(pipelines|environments|templates)/[^\s:]+(:\d+)?: ")
# Rendered objects that fail their schema (or the template contract) name the object and field instead,
# one per indented line.
OBJECT_PROBLEMS = re.compile(
    r"^error: \d+ (object|template contract) problems? in api for local/\w+( \(.*\))?:$"
)


@dataclass(frozen=True)
class Mutation:
    kind: str
    file: str
    at: float  # where in the file, as a fraction of its length or line count
    choice: int

    def apply(self, raw: bytes) -> bytes:
        lines = raw.split(b"\n")
        line = min(int(self.at * len(lines)), len(lines) - 1)
        offset = min(int(self.at * len(raw)), max(len(raw) - 1, 0))
        if self.kind == "flip":
            return raw[:offset] + bytes([raw[offset] ^ (1 << (self.choice % 8))]) + raw[offset + 1 :]
        if self.kind == "delete-line":
            return b"\n".join(lines[:line] + lines[line + 1 :])
        if self.kind == "rename-key":
            keys = list(KEY.finditer(raw))
            if not keys:
                return raw
            key = keys[int(self.at * len(keys)) % len(keys)]
            name = key.group(2)
            renamed = [name[:-1], name + b"x", name[1:2] + name[:1] + name[2:], name.upper()][self.choice % 4]
            return raw[: key.start(2)] + (renamed or b"k") + raw[key.end(2) :]
        if self.kind == "indent":
            lines[line] = (b"  " + lines[line]) if self.choice % 2 else lines[line][1:]
            return b"\n".join(lines)
        if self.kind == "not-utf8":
            return raw[:offset] + NOT_UTF8[self.choice % len(NOT_UTF8)] + raw[offset:]
        inserts = JINJA_BREAKS if self.kind == "jinja" else UNDEFINED
        text = inserts[self.choice % len(inserts)].encode()
        return raw[:offset] + text + raw[offset:]


KINDS = ("flip", "delete-line", "rename-key", "indent", "not-utf8", "jinja", "undefined")
mutations = st.builds(
    Mutation,
    kind=st.sampled_from(KINDS),
    file=st.sampled_from(FILES),
    at=st.floats(min_value=0, max_value=1, allow_nan=False),
    choice=st.integers(min_value=0, max_value=63),
)


@pytest.fixture(scope="module")
def estate() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="fuzz-render-") as folder:
        yield copy_estate(Path(folder))


def run(*args: str) -> tuple[int, str, str]:
    """`orchestrator ARGS` through the real entry point: its exit code, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    code: int | str | None = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code
    assert isinstance(code, int), f"exit with {code!r}"
    return code, out.getvalue(), err.getvalue()


def test_unmutated_estate_renders(estate: Path) -> None:
    code, out, err = run("render", "api", "--env", "local", "--cluster", "aws", "--root", str(estate))
    assert (code, err) == (0, "")
    assert "kind: Deployment" in out


@settings(max_examples=500, deadline=None)
@given(mutation=mutations)
def test_mutated_files_exit_0_or_2_with_one_message(estate: Path, mutation: Mutation) -> None:
    path = estate / mutation.file
    original = path.read_bytes()
    path.write_bytes(mutation.apply(original))
    try:
        code, _out, err = run("render", "api", "--env", "local", "--cluster", "aws", "--root", str(estate))
    finally:
        path.write_bytes(original)
    assert "Traceback" not in err
    assert code in (0, 2), err
    if code == 0:
        assert err == ""
        return
    first, *rest = err.rstrip("\n").split("\n")
    if OBJECT_PROBLEMS.match(first):
        assert rest and all(line.startswith("  ") for line in rest), err
    else:
        assert NAMES_A_FILE.match(first), err
        assert rest == [], err


def test_mutations_reach_every_kind() -> None:
    """The mutations change what they say they change (so the fuzz test exercises each of them)."""
    raw = b"a: 1\nbb:\n  c: {{ values.x }}\n"
    for kind in KINDS:
        changed = Mutation(kind, FILES[0], 0.5, 1).apply(raw)
        assert changed != raw, kind
    assert b"\xc3\x28" not in raw and b"\xff" in Mutation("not-utf8", FILES[0], 0.0, 0).apply(raw)
