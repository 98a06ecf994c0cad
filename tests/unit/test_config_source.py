"""Configuration files are read with a fast YAML 1.2 safe load; the round-trip tree only to place an error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from orchestrator.config import Project
from orchestrator.config.source import _plain, _safe_parser_accepts, load_yaml
from orchestrator.errors import ConfigError
from orchestrator.yaml_fast import fast_documents
from tests.helpers import REPO, copy_estate
from tests.yaml_streams import RISKY_WORDS, mutated, same, streams

# Scalars whose meaning differs between YAML 1.1 (PyYAML) and 1.2, and a few every loader must agree on.
TRICKY = """\
yes_word: yes
on_word: on
off_word: Off
sexagesimal: 10:30
clock: 12:30:00
leading_zero: 017
octal: 0o17
hex: 0x1F
exponent: 1e3
underscored: 1_000
infinity: .inf
nothing: ~
date: 2001-12-14
forced: !!str 5
true_word: TRUE
plain: y
"""


def test_the_fast_load_reads_what_the_round_trip_loader_reads(tmp_path: Path) -> None:
    path = tmp_path / "values.yaml"
    path.write_text(TRICKY)
    fast = load_yaml(path).data()
    assert fast == _plain(YAML(typ="rt").load(TRICKY)) | {"forced": "5"}
    assert fast["yes_word"] == "yes" and fast["on_word"] == "on" and fast["off_word"] == "Off"
    assert fast["sexagesimal"] == "10:30" and fast["clock"] == "12:30:00"
    assert fast["leading_zero"] == 17 and fast["octal"] == 15 and fast["exponent"] == 1000.0
    assert fast["forced"] == "5"  # the round-trip loader keeps this as a tagged scalar object


def test_every_shipped_file_reads_the_same_both_ways() -> None:
    for folder in ("pipelines", "environments"):
        for path in sorted((REPO / folder).glob("*.yaml")):
            assert load_yaml(path).data() == _plain(YAML(typ="rt").load(path.read_text())), path


def test_loading_a_valid_project_never_builds_the_round_trip_tree() -> None:
    project = Project(REPO)
    for name in project.environment_names:
        project.environment(name)
    for name in project.service_names:
        project.pipeline(name)
    documents = [project.pipeline_document(name) for name in project.service_names]
    assert all("tree" not in d.__dict__ for d in documents)


def test_a_validation_error_still_names_its_line(tmp_path: Path) -> None:
    estate = copy_estate(tmp_path)
    env_file = estate / "environments/prod.yaml"
    env_file.write_text(env_file.read_text().replace("weight: 30", "weight: thirty"))
    with pytest.raises(ConfigError) as caught:
        Project(estate).environment("prod")
    assert (caught.value.line, caught.value.key) == (14, "clusters[1].weight")
    assert caught.value.file is not None and caught.value.file.endswith("environments/prod.yaml")


def test_syntax_errors_are_worded_by_the_round_trip_loader(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("a: [1\nb: 2\n")
    with pytest.raises(ConfigError) as caught:
        load_yaml(path, "bad.yaml")
    assert str(caught.value) == "bad.yaml:2: YAML syntax error: expected ',' or ']', but got ':'"
    path.write_text("a: 1\na: 2\n")
    with pytest.raises(ConfigError) as caught:
        load_yaml(path, "bad.yaml")
    assert caught.value.line == 2 and "duplicate key" in str(caught.value)


def test_text_only_the_round_trip_loader_accepts_is_read_by_it(tmp_path: Path) -> None:
    path = tmp_path / "tagged.yaml"
    path.write_text("description: !custom x\n")
    document = load_yaml(path, "tagged.yaml")
    assert document.line_of(("description",)) == 1
    assert "tree" in document.__dict__


# --- the yaml-rs fast path answers only as ruamel's safe loader does -------------------------------------


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    with TemporaryDirectory() as folder:
        yield Path(folder)


def ruamel_outcome(text: str) -> tuple[str, Any]:
    try:
        return ("value", YAML(typ="safe").load(text))
    except Exception as exc:
        return (type(exc).__name__, str(exc))


def assert_as_ruamel(folder: Path, text: str) -> None:
    theirs = ruamel_outcome(text)
    fast = fast_documents(text, _safe_parser_accepts)
    if fast is not None and len(fast) <= 1:  # what load_yaml takes from yaml-rs
        assert theirs[0] == "value", f"fast path answered where ruamel raises {theirs}"
        assert same(fast[0] if fast else None, theirs[1]), f"{fast!r} != {theirs[1]!r}"
    if theirs[0] == "value":
        path = folder / "file.yaml"
        path.write_text(text, encoding="utf-8")
        assert same(load_yaml(path).plain, {} if theirs[1] is None else theirs[1])


PROPERTY = settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@PROPERTY
@given(st.one_of(streams(), mutated()))
@example("a: 1\n---\n")
@example("---\na: 1\n")
@example("")
def test_generated_files_load_as_ruamels_safe_loader_loads_them(scratch: Path, text: str) -> None:
    assert_as_ruamel(scratch, text)


@PROPERTY
@given(
    st.sampled_from(RISKY_WORDS),
    st.sampled_from(["a: {}\n", "{}: a\n", "- {}\n", "[{}]\n", "{{a: {}}}\n", "{{{}: a}}\n"]),
)
def test_every_risky_word_in_every_place_loads_as_ruamel_loads_it(
    scratch: Path, word: str, place: str
) -> None:
    assert_as_ruamel(scratch, place.format(word))


def test_the_shipped_files_take_the_fast_path() -> None:
    """The reference project's files hold nothing YAML 1.1 and 1.2 read apart: the comment lines that
    say `on 8080` are not searched."""
    paths = [
        path for folder in ("pipelines", "environments") for path in sorted((REPO / folder).glob("*.yaml"))
    ]
    assert len(paths) >= 7
    assert [p.name for p in paths if fast_documents(p.read_text(), _safe_parser_accepts) is None] == []
