"""A committed file is checked as a rendered set is before anything from it is applied."""

from __future__ import annotations

import pytest
import yaml

from orchestrator.config import Project
from orchestrator.gitops.manifests import CommittedManifestError, dump, load, manifest_path
from orchestrator.render.contract import TemplateContractError
from orchestrator.render.engine import Renderer
from orchestrator.render.manifests import RenderedSet
from orchestrator.rollout.desired import read_back
from tests.helpers import REPO


@pytest.fixture(scope="module")
def rendered() -> tuple[Project, list[RenderedSet]]:
    project = Project(REPO)
    sets = Renderer(project).render_environment(project.pipeline("api"), project.environment("local"))
    return project, sets


def files_of(sets: list[RenderedSet]) -> dict[str, bytes]:
    return {manifest_path("local", s.cluster, s.service): dump(s.objects) for s in sets}


def test_the_committed_bytes_read_back_as_the_rendered_objects(
    rendered: tuple[Project, list[RenderedSet]],
) -> None:
    project, sets = rendered
    again = read_back(files_of(sets), "local", project.environment("local"), sets)
    assert [s.objects for s in again] == [s.objects for s in sets]
    assert dump(sets[0].objects) == dump(load(dump(sets[0].objects), where="x"))  # stable bytes


def test_a_file_that_is_not_yaml_objects_is_named(rendered: tuple[Project, list[RenderedSet]]) -> None:
    project, sets = rendered
    files = files_of(sets)
    files["local/aws/api.yaml"] = b"kind: [unclosed\n"
    with pytest.raises(CommittedManifestError, match=r"local/aws/api\.yaml: not valid YAML"):
        read_back(files, "local", project.environment("local"), sets)
    files["local/aws/api.yaml"] = b"- just\n- a list\n"
    with pytest.raises(
        CommittedManifestError, match=r"local/aws/api\.yaml: document 1 is not a Kubernetes object"
    ):
        read_back(files, "local", project.environment("local"), sets)


def test_a_hand_edit_that_breaks_a_schema_or_the_contract_is_refused(
    rendered: tuple[Project, list[RenderedSet]],
) -> None:
    project, sets = rendered
    objects = [dict(o) for o in sets[0].objects]
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["replicas"] = "many"
    files = files_of(sets)
    files["local/aws/api.yaml"] = dump([broken if o is deployment else o for o in objects])
    with pytest.raises(CommittedManifestError, match=r"local/aws/api\.yaml: .*replicas"):
        read_back(files, "local", project.environment("local"), sets)

    files["local/aws/api.yaml"] = dump([o for o in objects if o["kind"] != "VirtualService"])
    with pytest.raises(TemplateContractError):
        read_back(files, "local", project.environment("local"), sets)


def test_a_cluster_missing_from_the_commit_is_named(rendered: tuple[Project, list[RenderedSet]]) -> None:
    project, sets = rendered
    files = files_of(sets)
    del files["local/gcp/api.yaml"]
    with pytest.raises(
        CommittedManifestError, match=r"local/gcp/api\.yaml: the commit has no desired state for gcp"
    ):
        read_back(files, "local", project.environment("local"), sets)
