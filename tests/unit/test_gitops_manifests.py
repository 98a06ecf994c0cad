"""A committed file's bytes and its reading back are PyYAML's, through the renderer's faster writer and
loader: the same release must keep making the same bytes, or an unchanged release would commit again."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.config import Project
from orchestrator.gitops.manifests import HEADER, dump, load
from orchestrator.render.engine import Renderer
from tests.helpers import REPO

_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def pyyaml_file(objects: list[dict[str, Any]]) -> bytes:
    """What `dump` wrote before it used the renderer's writer."""
    documents = yaml.dump_all(
        objects, Dumper=_Dumper, sort_keys=True, default_flow_style=False, allow_unicode=True, width=1 << 16
    )
    return (HEADER + "---\n" + documents).encode()


def pyyaml_objects(content: bytes) -> list[Any]:
    return [d for d in yaml.load_all(content.decode(), Loader=_Loader) if d is not None]


def test_every_rendered_set_of_the_reference_estate_is_written_and_read_as_pyyaml_does() -> None:
    project = Project(REPO)
    renderer = Renderer(project, validate=False)
    for environment in project.environment_names:
        for service in project.service_names:
            for rendered in renderer.render_environment(
                project.pipeline(service), project.environment(environment)
            ):
                content = dump(rendered.objects)
                assert content == pyyaml_file(rendered.objects)
                assert load(content, where="x") == pyyaml_objects(content) == rendered.objects


# Values a template can put in an object: unicode (written as is, allow_unicode), long strings (never
# folded, the width), words YAML 1.1 reads as other types, and numbers.
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=30),
    st.text(alphabet="aé日 -:#'\"\\\n", min_size=60, max_size=200),
    st.sampled_from(["yes", "no", "on", "0o12", "012", "1:30", "2001-01-01", "1e3", "~", "null", ""]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=16,
)
OBJECTS = st.lists(
    st.fixed_dictionaries(
        {"apiVersion": st.just("v1"), "kind": st.sampled_from(["ConfigMap", "Service"])},
        optional={"data": st.dictionaries(st.text(max_size=10), VALUES, max_size=4)},
    ),
    min_size=1,
    max_size=3,
)


@settings(max_examples=300, deadline=None)
@given(OBJECTS)
def test_generated_objects_are_written_and_read_as_pyyaml_does(objects: list[dict[str, Any]]) -> None:
    content = dump(objects)
    assert content == pyyaml_file(objects)
    assert load(content, where="x") == pyyaml_objects(content) == objects
