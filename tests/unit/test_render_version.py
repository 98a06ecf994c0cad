"""The version (the pods' `version` label, the canary's identity) changes with what renders the pods."""

from __future__ import annotations

from pathlib import Path

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


def test_a_change_to_an_included_template_is_a_new_version(tmp_path: Path) -> None:
    root = copy_estate(tmp_path / "estate")
    deployment = root / "templates" / "k8s" / "deployment.yaml.j2"
    deployment.write_text(deployment.read_text() + '\n{% include "k8s/extra.j2" %}\n')
    (root / "templates" / "k8s" / "extra.j2").write_text("{# one #}\n")
    before = versions(root)
    (root / "templates" / "k8s" / "extra.j2").write_text("{# two #}\n")
    assert versions(root) != before
