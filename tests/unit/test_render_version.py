"""The version (the pods' `version` label, the canary's identity) changes with what renders the pods."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.config import Project
from orchestrator.render.engine import Renderer
from tests.helpers import copy_estate


def versions(root: Path) -> dict[str, str]:
    project = Project(root)
    sets = Renderer(project).render_environment(project.pipeline("api"), project.environment("local"))
    return {s.cluster: s.version for s in sets}


def test_a_template_only_change_is_a_new_version_and_an_unused_template_is_not(tmp_path: Path) -> None:
    root = copy_estate(tmp_path / "estate")
    before = versions(root)
    assert versions(root) == before  # deterministic

    (root / "templates" / "k8s" / "unused.yaml.j2").write_text("# nothing renders this\n")
    assert versions(root) == before

    deployment = root / "templates" / "k8s" / "deployment.yaml.j2"
    deployment.write_text(deployment.read_text() + "\n{# a comment: the source changed #}\n")
    after = versions(root)
    assert set(after) == set(before) and all(after[c] != before[c] for c in before)


@pytest.mark.parametrize(
    ("reference", "extra"),
    [
        ('{% include "k8s/extra.j2" %}', "{# {} #}"),
        ('{%- include "k8s/extra.j2" -%}', "{# {} #}"),
        ('{%+\n  include "k8s/extra.j2" %}', "{# {} #}"),
        ('{% import "k8s/extra.j2" as extra %}', "{# {} #}"),
        ('{% from "k8s/extra.j2" import nothing %}', "{% macro nothing() %}{# {} #}{% endmacro %}"),
    ],
)
def test_a_change_to_a_referenced_template_is_a_new_version(
    tmp_path: Path, reference: str, extra: str
) -> None:
    root = copy_estate(tmp_path / "estate")
    deployment = root / "templates" / "k8s" / "deployment.yaml.j2"
    deployment.write_text(deployment.read_text() + f"\n{reference}\n")
    (root / "templates" / "k8s" / "extra.j2").write_text(extra.replace("{}", "one") + "\n")
    before = versions(root)
    (root / "templates" / "k8s" / "extra.j2").write_text(extra.replace("{}", "two") + "\n")
    assert versions(root) != before


def test_a_template_that_extends_another_changes_with_it(tmp_path: Path) -> None:
    root = copy_estate(tmp_path / "estate")
    deployment = root / "templates" / "k8s" / "deployment.yaml.j2"
    base = root / "templates" / "k8s" / "base.j2"
    base.write_text(deployment.read_text().replace("{#", "{# base:", 1) + "{% block extra %}{% endblock %}\n")
    deployment.write_text('{% extends "k8s/base.j2" %}\n')
    before = versions(root)
    base.write_text(base.read_text() + "{# changed #}\n")
    assert versions(root) != before
