"""The renderer's YAML loading gives exactly what PyYAML's safe loader gives, errors included."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.config import Project
from orchestrator.render.documents import _build, _Loader, dump_documents, dump_value, load_documents
from orchestrator.render.engine import Renderer
from tests.helpers import REPO

_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def pyyaml(text: str) -> list[Any]:
    return list(yaml.load_all(text, Loader=_SafeLoader))


MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
  labels:
    app.kubernetes.io/version: "0123456789"
    version: v3f9a
spec:
  replicas: 3
  template:
    spec:
      containers:
        - name: api
          image: "ghcr.io/addtocloud/api:1.0"
          ports: [{containerPort: 8080, protocol: TCP}]
          env:
            - {name: PORT, value: "8080"}
            - name: RATIO
              value: '0.5'
          securityContext:
            capabilities:
              drop: ["ALL"]
"""

SAME_AS_PYYAML = [
    MANIFEST,
    MANIFEST + "---\n" + MANIFEST,
    "",
    "# only a comment\n",
    "---\n---\n",
    "--- ~\n",
    "a: 1\n---\n\n---\nb: 2\n",
    # YAML 1.1 scalars, as Kubernetes' own YAML reads them
    "a: yes\nb: No\nc: on\nd: OFF\ne: ~\nf: null\ng: ''\nh: true\n",
    "a: 0x1F\nb: 017\nc: 0b101\nd: 1_000\ne: 190:20:30\nf: -42\ng: +7\n",
    "a: 1.5\nb: 1e3\nc: 1.0e+3\nd: .inf\ne: -.Inf\nf: 6.8523015e+5\ng: 1_000.5\n",
    "a: 2001-12-14\nb: 2001-12-14t21:59:43.10-05:00\nc: '2001-12-14'\n",
    "a: '123'\nb: \"true\"\nc: !!str 123\nd: !!int '5'\ne: !!float '1'\n",
    "a: !!binary aGVsbG8=\nb: !!set {x, y}\nc: !!omap [{k: v}]\nd: !!pairs [{k: v}]\n",
    "1: one\ntrue: yes\n~: nothing\n2001-12-14: a day\n1.5: x\n",
    "dup: 1\ndup: 2\n",
    "query: a=1&b=2\nstar: '*'\n",
    "base: &base {a: 1, b: 2}\nderived:\n  <<: *base\n  c: 3\n",
    "many:\n  <<: [{a: 1}, {b: 2}]\n  a: 0\n",
    "list: &l [1, 2]\nagain: *l\n",
    "s: &s text\nt: *s\n",
    "=: value key\n",
    "text: |\n  line one\n  line two\nfolded: >\n  a\n  b\n",
]


@pytest.mark.parametrize("text", SAME_AS_PYYAML)
def test_loads_exactly_what_pyyaml_loads(text: str) -> None:
    assert load_documents(text) == pyyaml(text)
    for mine, theirs in zip(load_documents(text), pyyaml(text), strict=True):
        assert type(mine) is type(theirs)


def test_scalar_types_match_not_just_values() -> None:
    text = "a: 1\nb: 1.0\nc: true\nd: '1'\n"
    mine = load_documents(text)[0]
    assert [type(v) for v in mine.values()] == [int, float, bool, str]


def test_an_alias_is_the_same_object_as_its_anchor() -> None:
    document = load_documents("list: &l [1, 2]\nagain: *l\nmap: &m {a: 1}\nmore: *m\n")[0]
    assert document["again"] is document["list"]
    assert document["more"] is document["map"]


def test_recursive_structures_load_as_pyyaml_builds_them() -> None:
    document = load_documents("&r [1, *r]\n")[0]
    assert document[0] == 1
    assert document[1] is document


@pytest.mark.parametrize(
    "text",
    [
        "a: [1, 2\n",
        "a: b: c\n",
        "key: value\n  bad indentation: here\n",
        "a: *undefined\n",
        "? [a, b]\n: complex key\n",
        "? {a: b}\n: complex key\n",
        "a: !!int notanumber\n",
        "a: !!python/object:os.system ls\n",
        "a: !custom x\n",
    ],
)
def test_errors_are_pyyaml_errors_with_the_same_message_and_place(text: str) -> None:
    # whatever PyYAML raises (a YAMLError, or a ValueError for `!!int x`), the same
    with pytest.raises(Exception) as theirs:
        pyyaml(text)
    with pytest.raises(Exception) as mine:
        load_documents(text)
    assert type(mine.value) is type(theirs.value)
    assert str(mine.value) == str(theirs.value)


def test_ordinary_manifests_take_the_fast_path() -> None:
    """No fallback to PyYAML's constructor for what templates render (it would be correct, but slow)."""
    texts = [MANIFEST, *(p.read_text() for p in sorted((REPO / "pipelines").glob("*.yaml")))]
    for text in texts:
        loader = _Loader(text)
        try:
            while loader.check_node():
                node = loader.get_node()
                assert _build(node) == pyyaml(text)[0]
        finally:
            loader.dispose()


# --- writing -------------------------------------------------------------------------------------------

_SafeDumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def pyyaml_text(objects: list[Any], sort_keys: bool = False) -> str:
    return yaml.dump_all(
        objects, Dumper=_SafeDumper, sort_keys=sort_keys, default_flow_style=False, explicit_start=True
    )


_SHARED = {"ports": [80, 443]}
_RECURSIVE: list[Any] = []
_RECURSIVE.append(_RECURSIVE)

SAME_TEXT_AS_PYYAML = [
    [],
    [{}],
    [[]],
    ["plain", 5, None, True, [1, [2, [3]]]],
    [{"b": 1, "a": 2, "c": {"z": None, "y": [], "x": {}}}],
    [{"x": 1e17, "y": float("inf"), "z": float("-inf"), "w": float("nan"), "v": -0.0, "u": 3.0, "t": 1e-7}],
    [{"yes": "yes", "n": "123", "o": "0o17", "e": "", "t": "true", "null": "null", "tilde": "~", "f": "1.5"}],
    [{"s": "two\nlines\n", "u": "ünïcode ☃", "l": "  leading", "c": "a: b", "d": "- x", "h": "#c"}],
    [{"first": _SHARED, "second": _SHARED}],
    [_RECURSIVE],
    [{2: "int", "1": "str", True: "bool", None: "none"}],
    [{"tuple": (1, 2)}],
    [{"a": 1}, {"b": 2}],
]


@pytest.mark.parametrize("objects", SAME_TEXT_AS_PYYAML)
@pytest.mark.parametrize("sort_keys", [False, True])
def test_writes_the_text_pyyaml_writes(objects: list[Any], sort_keys: bool) -> None:
    assert dump_documents(objects, sort_keys=sort_keys) == pyyaml_text(objects, sort_keys)


@pytest.mark.parametrize(
    "value", [v for objects in SAME_TEXT_AS_PYYAML for v in objects] + ["x", "yes", 1.5, []]
)
def test_to_yaml_writes_the_text_pyyaml_writes(value: Any) -> None:
    """The templates' `to_yaml`: one value, keys sorted, no document marker (a lone scalar gets `...`)."""
    assert dump_value(value) == yaml.dump(value, Dumper=_SafeDumper, sort_keys=True, default_flow_style=False)


PLAIN = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(PLAIN)
def test_generated_plain_data_is_written_as_pyyaml_writes_it(value: Any) -> None:
    assert dump_value(value) == yaml.dump(value, Dumper=_SafeDumper, sort_keys=True, default_flow_style=False)
    assert dump_documents([value]) == pyyaml_text([value])


def test_rendered_sets_are_written_as_pyyaml_writes_them() -> None:
    project = Project(REPO)
    renderer = Renderer(project, validate=False)
    for env in project.environment_names:
        for service in project.service_names:
            for rendered in renderer.render_environment(project.pipeline(service), project.environment(env)):
                assert rendered.to_yaml() == pyyaml_text(rendered.objects)
                assert load_documents(rendered.to_yaml()) == rendered.objects
