"""The render benchmark compares like with like: its kustomize overlays build the renderer's objects.

Small estates only, and nothing is timed here (SPEC §9: benchmarks measure, tests check). kubectl is a
real program these tests need; without it they fail.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from benchmarks.estate import build_estate, build_kustomize_estate, object_index, write_tree
from orchestrator.config import Project
from orchestrator.render.engine import Renderer
from orchestrator.render.manifests import RenderedSet, environment_hash
from tests.helpers import run_benchmark


def kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        pytest.fail("kubectl is needed on PATH: the benchmark compares against `kubectl kustomize`")
    return path


def render_all(root: Path) -> list[RenderedSet]:
    project = Project(root)
    renderer = Renderer(project)
    return [
        rendered
        for service in project.service_names
        for env in project.environment_names
        for rendered in renderer.render_environment(project.pipeline(service), project.environment(env))
    ]


def kustomize(folder: Path) -> dict[tuple[str, str, str], dict[str, object]]:
    result = subprocess.run([kubectl(), "kustomize", str(folder)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return object_index(d for d in yaml.safe_load_all(result.stdout) if d)


def test_scaled_estate_has_three_environments_of_three_clouds_and_renders_valid(tmp_path: Path) -> None:
    estate = build_estate(tmp_path / "estate", services=3)
    assert estate.services == ["svc-000", "svc-001", "svc-002"]
    assert estate.clusters == {env: ["aws", "azure", "gcp"] for env in ("dev", "staging", "prod")}
    sets = render_all(estate.root)  # validation on: a schema failure raises
    assert len(sets) == estate.set_count == 27
    ports = {
        s.service: obj["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"]
        for s in sets
        for obj in s.objects
        if obj["kind"] == "Deployment"
    }
    assert ports == {"svc-000": 8000, "svc-001": 8001, "svc-002": 8002}
    dev = [s for s in sets if s.environment == "dev"]
    assert all("HorizontalPodAutoscaler" not in {o["kind"] for o in s.objects} for s in dev)


def test_every_overlay_builds_exactly_the_rendered_set(tmp_path: Path) -> None:
    estate = build_estate(tmp_path / "estate", services=2)
    sets = render_all(estate.root)
    overlays = build_kustomize_estate(tmp_path / "kustomize", sets)
    assert len(overlays) == 18
    for overlay, rendered in zip(overlays, sets, strict=True):
        assert (overlay.service, overlay.environment, overlay.cluster) == (
            rendered.service,
            rendered.environment,
            rendered.cluster,
        )
        assert kustomize(overlay.path) == object_index(rendered.objects), overlay.path


def test_a_cluster_tree_builds_every_service_of_that_cluster(tmp_path: Path) -> None:
    estate = build_estate(tmp_path / "estate", services=2)
    sets = render_all(estate.root)
    overlays = build_kustomize_estate(tmp_path / "kustomize", sets)
    prod_gcp = [o for o in overlays if (o.environment, o.cluster) == ("prod", "gcp")]
    tree = write_tree(tmp_path / "kustomize" / "trees" / "prod-gcp", prod_gcp)
    expected = [o for s in sets if (s.environment, s.cluster) == ("prod", "gcp") for o in s.objects]
    assert kustomize(tree) == object_index(expected)


def test_measure_mode_renders_the_estate_in_a_fresh_process(tmp_path: Path) -> None:
    estate = build_estate(tmp_path / "estate", services=2)
    result = run_benchmark("render.py", "--measure-render", str(estate.root))
    assert result.returncode == 0, result.stderr
    measured = json.loads(result.stdout)
    assert measured["sets"] == 18
    sets = render_all(estate.root)
    for key, digest in measured["hashes"].items():
        service, env = key.split("/")
        assert digest == environment_hash([s for s in sets if (s.service, s.environment) == (service, env)])
