"""Configuration files load into typed models; every mistake names file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.config import Project
from orchestrator.errors import ConfigError, UnknownNameError
from tests.helpers import REPO, copy_estate


@pytest.fixture
def estate(tmp_path: Path) -> Path:
    return copy_estate(tmp_path)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def test_reference_estate_loads() -> None:
    project = Project(REPO)
    assert project.service_names == ["api", "frontend"]
    assert project.environment_names == ["dev", "local", "prod", "staging"]
    prod = project.environment("prod")
    assert [(c.name, c.target.type, c.weight) for c in prod.clusters] == [
        ("aws", "eks", 60),
        ("azure", "aks", 30),
        ("gcp", "gke", 10),
    ]
    assert prod.clusters[0].target.cluster == "addtocloud-prod-eks"  # type: ignore[union-attr]
    assert prod.approval.required is True
    local = project.environment("local")
    assert {c.target.type for c in local.clusters} == {"sim"}
    assert project.pipeline("api").values["port"] == 8080
    assert project.pipeline("frontend").values["port"] == 3000


def test_unknown_key_names_file_line_and_key(estate: Path) -> None:
    edit(estate / "environments/prod.yaml", "    weight: 30\n", "    weight: 30\n    wieght: 3\n")
    with pytest.raises(ConfigError) as caught:
        Project(estate).environment("prod")
    err = caught.value
    assert err.file is not None and err.file.endswith("environments/prod.yaml")
    assert err.key == "clusters[1].wieght"
    assert err.line == 15
    assert "unknown key" in str(err)


def test_wrong_type_names_the_key(estate: Path) -> None:
    edit(estate / "environments/local.yaml", "weight: 60", "weight: sixty")
    with pytest.raises(ConfigError) as caught:
        Project(estate).environment("local")
    assert caught.value.key == "clusters[0].weight"
    assert caught.value.line == 8
    assert "sixty" in str(caught.value)


def test_missing_field_inside_a_cluster_target(estate: Path) -> None:
    edit(estate / "environments/prod.yaml", "cluster: addtocloud-prod-eks, region: us-west-2", "cluster: x")
    with pytest.raises(ConfigError) as caught:
        Project(estate).environment("prod")
    assert caught.value.key == "clusters[0].target.region"
    assert "missing required key" in str(caught.value)


def test_yaml_syntax_error_names_the_line(estate: Path) -> None:
    edit(estate / "pipelines/api.yaml", "  port: 8080\n", "  port: [8080\n")
    with pytest.raises(ConfigError) as caught:
        Project(estate).pipeline("api")
    assert caught.value.file is not None and caught.value.file.endswith("pipelines/api.yaml")
    assert caught.value.line is not None
    assert "YAML syntax error" in str(caught.value)


def test_unknown_names_list_the_known_ones() -> None:
    project = Project(REPO)
    with pytest.raises(UnknownNameError, match="known services: api, frontend"):
        project.pipeline("billing")
    with pytest.raises(UnknownNameError, match="known environments: dev, local, prod, staging"):
        project.environment("qa")


def test_weights_must_add_up_to_100(estate: Path) -> None:
    edit(estate / "environments/prod.yaml", "weight: 10", "weight: 20")
    with pytest.raises(ConfigError, match="add up to 110"):
        Project(estate).environment("prod")


def test_waves_must_name_known_clusters(estate: Path) -> None:
    edit(estate / "environments/prod.yaml", "  - [gcp]\n", "  - [gcp, onprem]\n")
    with pytest.raises(ConfigError, match="unknown clusters onprem") as caught:
        Project(estate).environment("prod")
    assert caught.value.line is not None


def test_canary_weights_must_not_decrease(estate: Path) -> None:
    edit(estate / "pipelines/api.yaml", "setWeight: 50", "setWeight: 5")
    with pytest.raises(ConfigError, match="must not decrease") as caught:
        Project(estate).pipeline("api")
    assert caught.value.key == "strategy.canary"


def test_promotion_names_known_environments(estate: Path) -> None:
    edit(estate / "pipelines/api.yaml", "promotion: [dev, staging, prod]", "promotion: [dev, qa, prod]")
    with pytest.raises(ConfigError, match="unknown environment 'qa'") as caught:
        Project(estate).pipeline("api")
    assert caught.value.key == "promotion[1]"
