"""The renderer's `tojson` writes what Jinja's own filter writes, for every value."""

from __future__ import annotations

from typing import Any

import jinja2
from hypothesis import given, settings
from hypothesis import strategies as st
from jinja2.filters import do_tojson
from jinja2.nodes import EvalContext
from markupsafe import Markup

from orchestrator.config import Project
from orchestrator.render.engine import Renderer, _tojson
from tests.helpers import REPO

CONTEXT = EvalContext(jinja2.Environment())
VALUES = st.one_of(
    st.text(),
    st.text(alphabet="ab<>&'\"\\\u00e9\u2028 "),
    st.integers(),
    st.floats(allow_nan=False),
    st.none(),
    st.booleans(),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
)


@settings(max_examples=400)
@given(VALUES, st.sampled_from([None, 2]))
def test_the_same_text_and_type_as_jinjas_filter(value: Any, indent: int | None) -> None:
    mine = _tojson(CONTEXT, value, indent)
    assert mine == do_tojson(CONTEXT, value, indent)
    assert type(mine) is Markup  # later filters (`| replace`) treat Markup as Jinja's would


def test_a_template_gets_it() -> None:
    assert Renderer(Project(REPO)).jinja.filters["tojson"] is _tojson
