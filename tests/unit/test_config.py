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
    assert project.environment_names == ["dev", "local", "local-prod", "prod", "staging"]
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
    with pytest.raises(UnknownNameError, match="known environments: dev, local, local-prod, prod, staging"):
        project.environment("qa")


def test_weights_must_add_up_to_100(estate: Path) -> None:
    edit(estate / "environments/prod.yaml", "weight: 10", "weight: 20")
    with pytest.raises(ConfigError, match="add up to 110") as caught:
        Project(estate).environment("prod")
    # The sum is completed by the last cluster's weight (line 20), not by `description:` on line 2.
    assert caught.value.key == "clusters[2].weight"
    assert caught.value.line == 20


def test_waves_must_name_known_clusters(estate: Path) -> None:
    edit(estate / "environments/prod.yaml", "  - [gcp]\n", "  - [gcp, onprem]\n")
    with pytest.raises(ConfigError, match="unknown cluster onprem") as caught:
        Project(estate).environment("prod")
    assert caught.value.key == "waves[2][1]"
    assert caught.value.line == 26


def test_canary_weights_must_not_decrease(estate: Path) -> None:
    edit(estate / "pipelines/api.yaml", "setWeight: 50", "setWeight: 5")
    with pytest.raises(ConfigError, match="must not decrease") as caught:
        Project(estate).pipeline("api")
    assert caught.value.key is not None
    assert caught.value.key.startswith("strategy.canary.steps[") and caught.value.key.endswith("].setWeight")
    line = (estate / "pipelines/api.yaml").read_text().splitlines()[caught.value.line - 1]  # type: ignore[operator]
    assert line.strip() == "- setWeight: 5"


def test_promotion_paths_of_the_reference_estate() -> None:
    pipeline = Project(REPO).pipeline("api")
    assert pipeline.promotion_paths == [["local", "local-prod"], ["dev", "staging", "prod"]]
    assert pipeline.promotion_path("staging") == ["dev", "staging", "prod"]
    assert pipeline.promotion_path("nowhere") is None
    assert pipeline.promotion_environments == ["local", "local-prod", "dev", "staging", "prod"]


def test_promotion_names_known_environments(estate: Path) -> None:
    edit(estate / "pipelines/api.yaml", "[dev, staging, prod]]", "[dev, qa, prod]]")
    with pytest.raises(ConfigError, match="unknown environment 'qa'") as caught:
        Project(estate).pipeline("api")
    assert caught.value.key == "promotion[1][1]"


def test_a_single_promotion_path_is_a_flat_list(estate: Path) -> None:
    edit(estate / "pipelines/api.yaml", "[[local, local-prod], [dev, staging, prod]]", "[dev, staging, prod]")
    pipeline = Project(estate).pipeline("api")
    assert pipeline.promotion_paths == [["dev", "staging", "prod"]]
    edit(estate / "pipelines/frontend.yaml", "[[local, local-prod], [dev, staging, prod]]", "[dev, qa]")
    with pytest.raises(ConfigError, match="unknown environment 'qa'") as caught:
        Project(estate).pipeline("frontend")
    assert caught.value.key == "promotion[1]"


def test_an_environment_is_on_one_promotion_path(estate: Path) -> None:
    edit(estate / "pipelines/api.yaml", "[dev, staging, prod]]", "[dev, local, prod]]")
    with pytest.raises(ConfigError, match="'local' is on the promotion paths twice") as caught:
        Project(estate).pipeline("api")
    assert caught.value.key == "promotion[1][1]"
    assert caught.value.file == "pipelines/api.yaml" or str(caught.value.file).endswith("pipelines/api.yaml")


def test_misspelt_key_is_named_first_with_the_key_it_misspells(estate: Path) -> None:
    edit(estate / "environments/prod.yaml", "    weight: 60\n", "    wieght: 60\n")
    with pytest.raises(ConfigError) as caught:
        Project(estate).environment("prod")
    err = caught.value
    # Not "missing required key" at line 5 "(and 1 more problem)": the missing weight is the misspelling.
    assert (err.line, err.key) == (8, "clusters[0].wieght")
    assert err.reason == "unknown key 'wieght' (did you mean 'weight'?)"


def test_unknown_key_is_named_before_other_problems(estate: Path) -> None:
    edit(estate / "environments/prod.yaml", "    region: eastus\n", "    region: [eastus]\n    colour: red\n")
    with pytest.raises(ConfigError) as caught:
        Project(estate).environment("prod")
    err = caught.value
    assert (err.line, err.key) == (14, "clusters[1].colour")
    assert err.reason == "unknown key 'colour' (and 1 more problem)"


def test_unknown_registry_points_at_the_cluster_naming_it(estate: Path) -> None:
    edit(estate / "environments/prod.yaml", "    registry: acr\n", "    registry: acrr\n")
    with pytest.raises(ConfigError) as caught:
        Project(estate).environment("prod")
    err = caught.value
    assert (err.line, err.key) == (16, "clusters[1].registry")
    assert err.reason == "cluster 'azure' names registry 'acrr'; known registries: acr, ecr, gar"


def test_repeated_cluster_name_points_at_the_repeat(estate: Path) -> None:
    edit(estate / "environments/prod.yaml", "  - name: gcp\n", "  - name: aws\n")
    with pytest.raises(ConfigError) as caught:
        Project(estate).environment("prod")
    assert (caught.value.line, caught.value.key) == (17, "clusters[2].name")
    assert caught.value.reason == "cluster names must be unique; repeated: aws"


def test_a_root_without_pipelines_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        Project(tmp_path / "nonexistent").pipeline("api")
    assert "nonexistent does not exist" in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        Project(tmp_path).environment("prod")
    assert f"project root {tmp_path} has no environments/ folder" in str(caught.value)


@pytest.mark.parametrize("relative", ["environments/prod.yaml", "pipelines/api.yaml"])
def test_a_file_that_is_not_utf8_names_file_and_line(estate: Path, relative: str) -> None:
    path = estate / relative
    lines = path.read_bytes().split(b"\n")
    lines[3] = lines[3] + b" # caf\xe9"
    path.write_bytes(b"\n".join(lines))
    project = Project(estate)
    with pytest.raises(ConfigError) as caught:
        project.environment("prod") if relative.startswith("env") else project.pipeline("api")
    err = caught.value
    assert err.file is not None and err.file.endswith(relative)
    assert err.line == 4
    assert "not UTF-8 text: byte 0xe9" in err.reason


def test_a_control_character_names_file_and_line(estate: Path) -> None:
    edit(estate / "environments/prod.yaml", "namespace: addtocloud", "namespace: add\x01tocloud")
    with pytest.raises(ConfigError) as caught:
        Project(estate).environment("prod")
    assert caught.value.line == 3
    assert "not allowed in YAML" in caught.value.reason


def test_unknown_key_suggests_the_closest_allowed_key(estate: Path) -> None:
    edit(estate / "environments/prod.yaml", "namespace: addtocloud", "namspace: addtocloud")
    edit(estate / "pipelines/api.yaml", "  canary:\n", "  canery:\n")
    with pytest.raises(ConfigError) as caught:
        Project(estate).environment("prod")
    assert (caught.value.line, caught.value.key) == (3, "namspace")
    assert caught.value.reason == "unknown key 'namspace' (did you mean 'namespace'?)"
    with pytest.raises(ConfigError) as caught:
        Project(estate).pipeline("api")
    assert caught.value.key == "strategy.canery"
    assert caught.value.reason.startswith("unknown key 'canery' (did you mean 'canary'?)")


def test_a_target_without_or_with_an_unknown_type_points_at_its_type(estate: Path) -> None:
    edit(
        estate / "environments/local.yaml", "target: {type: sim, cluster: azure}", "target: {cluster: azure}"
    )
    with pytest.raises(ConfigError) as caught:
        Project(estate).environment("local")
    assert (caught.value.line, caught.value.key) == (14, "clusters[1].target.type")
    assert caught.value.reason == "missing required key"
    edit(
        estate / "environments/local.yaml", "target: {cluster: azure}", "target: {type: simm, cluster: azure}"
    )
    with pytest.raises(ConfigError) as caught:
        Project(estate).environment("local")
    assert (caught.value.line, caught.value.key) == (14, "clusters[1].target.type")
    assert caught.value.reason == "unknown type 'simm'; known: kubeconfig, eks, aks, gke, sim"


@pytest.mark.parametrize(
    ("gitops", "key", "complaint"),
    [
        ("gitops: {mode: pull-request}", "gitops.mode", "pull-request mode needs `repository`"),
        (
            "gitops: {repository: ../estate.git, mode: pull-request}",
            "gitops.mode",
            "pull-request mode needs `github`",
        ),
        (
            "gitops: {repository: ../estate.git, github: {repository: acme/estate}}",
            "gitops.github",
            "set mode: pull-request",
        ),
        ("gitops: {mode: pull_request}", "gitops.mode", "'commit' or 'pull-request'"),
    ],
)
def test_pull_request_mode_needs_a_remote_and_a_github_repository(
    estate: Path, gitops: str, key: str, complaint: str
) -> None:
    local = estate / "environments/local.yaml"
    local.write_text(local.read_text() + gitops + "\n")
    with pytest.raises(ConfigError, match=complaint) as caught:
        Project(estate).environment("local")
    assert caught.value.key == key
    assert caught.value.line is not None


def test_pull_request_mode_loads_and_commit_stays_the_default(estate: Path) -> None:
    assert Project(estate).environment("local").gitops.mode == "commit"
    local = estate / "environments/local.yaml"
    local.write_text(
        local.read_text()
        + "gitops:\n  repository: ../estate.git\n  mode: pull-request\n"
        + "  github: {repository: acme/estate, tokenEnv: ESTATE_TOKEN}\n"
    )
    gitops = Project(estate).environment("local").gitops
    assert (gitops.mode, gitops.github and gitops.github.repository) == ("pull-request", "acme/estate")
    assert gitops.github is not None and gitops.github.token_env == "ESTATE_TOKEN"
