"""yaml-rs's fast path gives PyYAML's answer exactly, or no answer: generated YAML against the library."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from orchestrator.render.documents import load_documents
from orchestrator.yaml_fast import fast_documents
from tests.yaml_streams import RISKY_WORDS, mutated, same, streams

_SafeLoader: Any = yaml.CSafeLoader


def pyyaml(text: str) -> list[Any]:
    return list(yaml.load_all(text, Loader=_SafeLoader))


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
