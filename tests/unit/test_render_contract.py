"""The template contract: what the rollout engine needs from a service's templates, checked at render."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.config import Project
from orchestrator.render.contract import TemplateContractError
from orchestrator.render.engine import Renderer
from tests.helpers import REPO, copy_estate


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    for obj in objects:
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            return obj
    raise AssertionError(f"{kind}/{name} not rendered")


def render(root: Path, env: str = "local", service: str = "api", **kwargs: Any) -> list[Any]:
    project = Project(root)
    return Renderer(project).render_environment(project.pipeline(service), project.environment(env), **kwargs)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new))


def broken(root: Path, env: str = "local") -> TemplateContractError:
    with pytest.raises(TemplateContractError) as caught:
        render(root, env)
    assert caught.value.exit_code == 2
    return caught.value


# --- the emulator's annotations ------------------------------------------------------------------------


@pytest.mark.parametrize("env", ["prod", "staging", "dev"])
def test_real_clusters_get_no_sim_annotations(env: str) -> None:
    for service in ("api", "frontend"):
        for rendered in render(REPO, env, service):
            assert "sim.addtocloud.io" not in json.dumps(rendered.objects), (env, service, rendered.cluster)


def test_emulated_clusters_keep_the_annotations_the_emulator_reads() -> None:
    for rendered in render(REPO, "local", overrides={"sim": {"errorRate": 0.3, "failure": "never-ready"}}):
        pod = find(rendered.objects, "Deployment", "api")["spec"]["template"]
        annotations = pod["metadata"]["annotations"]
        assert annotations["sim.addtocloud.io/error-rate"] == "0.3"
        assert annotations["sim.addtocloud.io/latency-ms"] == "0"
        assert annotations["sim.addtocloud.io/failure"] == "never-ready"


def test_unguarded_sim_annotation_is_refused_for_a_real_cluster(tmp_path: Path) -> None:
    estate = copy_estate(tmp_path)
    edit(estate / "templates/k8s/deployment.yaml.j2", "{%- if cluster.emulated %}\n", "{%- if true %}\n")
    render(estate, "local")  # the emulator's own clusters may have them
    error = broken(estate, "prod")
    assert error.file == "templates/k8s/deployment.yaml.j2"
    assert "for prod/aws" in str(error)
    assert (
        "templates/k8s/deployment.yaml.j2: Deployment/api: spec.template.metadata.annotations has "
        "sim.addtocloud.io/error-rate: the emulator's annotations belong only on clusters whose target "
        "type is sim"
    ) in str(error)


def test_a_sim_annotation_the_emulator_cannot_read_is_refused() -> None:
    with pytest.raises(TemplateContractError) as caught:
        render(REPO, "local", overrides={"sim": {"errorRate": 2}})
    assert "sim.addtocloud.io/error-rate: '2' is outside 0..1" in str(caught.value)


# --- what the engine finds by name ---------------------------------------------------------------------


def test_the_shipped_templates_keep_the_contract_everywhere() -> None:
    project = Project(REPO)
    renderer = Renderer(project)
    for env in project.environment_names:
        for service in project.service_names:
            assert renderer.render_environment(project.pipeline(service), project.environment(env))


def test_missing_version_label_names_the_deployment_template(tmp_path: Path) -> None:
    estate = copy_estate(tmp_path)
    edit(estate / "templates/k8s/deployment.yaml.j2", "        version: {{ version }}\n", "")
    error = broken(estate)
    assert error.file == "templates/k8s/deployment.yaml.j2"
    assert (
        "templates/k8s/deployment.yaml.j2: Deployment/api: spec.template.metadata.labels.version must be "
        "the release version (version: {{ version }}), found None"
    ) in str(error)


def test_instance_label_missing_from_the_selector(tmp_path: Path) -> None:
    estate = copy_estate(tmp_path)
    edit(estate / "templates/k8s/deployment.yaml.j2", "      app.kubernetes.io/instance: {{ service }}\n", "")
    error = broken(estate)
    assert ("Deployment/api: spec.selector.matchLabels must carry app.kubernetes.io/instance: api") in str(
        error
    )
    assert "spec.template.metadata.labels must carry" not in str(error)  # the pod labels still have it


def test_selector_on_version_is_refused(tmp_path: Path) -> None:
    estate = copy_estate(tmp_path)
    edit(
        estate / "templates/k8s/deployment.yaml.j2",
        "      app.kubernetes.io/instance: {{ service }}\n",
        "      app.kubernetes.io/instance: {{ service }}\n      version: {{ version }}\n",
    )
    assert "spec.selector.matchLabels must not select on version" in str(broken(estate))


def test_destination_rule_without_a_canary_subset(tmp_path: Path) -> None:
    estate = copy_estate(tmp_path)
    edit(
        estate / "templates/istio/destinationrule.yaml.j2",
        "    - name: canary\n      labels:\n        version: {{ version }}\n",
        "",
    )
    error = broken(estate)
    assert error.file == "templates/istio/destinationrule.yaml.j2"
    assert "DestinationRule/api: spec.subsets has no 'canary' subset" in str(error)


def test_virtual_service_without_a_primary_route(tmp_path: Path) -> None:
    estate = copy_estate(tmp_path)
    edit(estate / "templates/istio/virtualservice.yaml.j2", "- name: primary", "- name: main")
    error = broken(estate)
    assert error.file == "templates/istio/virtualservice.yaml.j2"
    assert "VirtualService/api: spec.http has no route named 'primary'" in str(error)


def test_primary_route_without_a_canary_destination(tmp_path: Path) -> None:
    estate = copy_estate(tmp_path)
    edit(estate / "templates/istio/virtualservice.yaml.j2", "subset: canary", "subset: stable")
    error = str(broken(estate))
    assert "VirtualService/api: route 'primary' has no destination on subset 'canary'" in error
    assert "sends traffic to api.addtocloud.svc.cluster.local subset stable twice" in error


def test_a_pipeline_without_the_destination_rule_template(tmp_path: Path) -> None:
    estate = copy_estate(tmp_path)
    edit(
        estate / "pipelines/api.yaml",
        "promotion: [[local, local-prod], [dev, staging, prod]]\n",
        "promotion: [[local, local-prod], [dev, staging, prod]]\n"
        "templates: [k8s/deployment.yaml.j2, k8s/serviceaccount.yaml.j2, istio/virtualservice.yaml.j2]\n",
    )
    error = broken(estate)
    assert error.file is None
    assert (
        "no template renders DestinationRule/api (networking.istio.io/*); templates: k8s/deployment.yaml.j2, "
        "k8s/serviceaccount.yaml.j2, istio/virtualservice.yaml.j2"
    ) in str(error)


# --- cross-cloud hosts, one per cluster ----------------------------------------------------------------


def _two_aws_clusters(estate: Path) -> None:
    edit(
        estate / "environments/local.yaml",
        "    weight: 10\n    target: {type: sim, cluster: gcp}\n",
        "    weight: 0\n    target: {type: sim, cluster: gcp}\n"
        "  - name: aws-east\n    cloud: aws\n    region: us-east-1\n    weight: 10\n"
        "    target: {type: sim, cluster: aws-east}\n",
    )
    edit(estate / "environments/local.yaml", "  - [azure, gcp]\n", "  - [azure, gcp, aws-east]\n")
    edit(estate / "environments/local.yaml", "    weight: 60\n", "    weight: 40\n")
    edit(estate / "environments/local.yaml", "    weight: 30\n", "    weight: 50\n")


def test_two_clusters_of_one_cloud_get_their_own_hosts(tmp_path: Path) -> None:
    estate = copy_estate(tmp_path)
    _two_aws_clusters(estate)
    sets = render(estate)
    assert [s.cluster for s in sets] == ["aws", "azure", "gcp", "aws-east"]
    routes = {r["name"]: r for r in find(sets[0].objects, "VirtualService", "api-crosscloud")["spec"]["http"]}
    assert [(d["destination"]["host"], d["weight"]) for d in routes["crosscloud"]["route"]] == [
        ("addtocloud-api.aws", 40),
        ("addtocloud-api.azure", 50),
        ("addtocloud-api.gcp", 0),
        ("addtocloud-api.aws-east", 10),
    ]
    # The region header that pins aws shares it between its two clusters by their weights (40:10).
    assert [(d["destination"]["host"], d["weight"]) for d in routes["region-us-west"]["route"]] == [
        ("addtocloud-api.aws", 80),
        ("addtocloud-api.aws-east", 20),
    ]
    assert [(d["destination"]["host"], d["weight"]) for d in routes["region-us-east"]["route"]] == [
        ("addtocloud-api.azure", 100),
    ]


def test_hosts_built_from_the_cloud_are_refused_as_duplicates(tmp_path: Path) -> None:
    estate = copy_estate(tmp_path)
    _two_aws_clusters(estate)
    template = estate / "templates/istio/virtualservice-crosscloud.yaml.j2"
    template.write_text(
        template.read_text().replace("{{ service }}.{{ c.name }}", "{{ service }}.{{ c.cloud }}")
    )
    error = broken(estate)
    assert error.file == "templates/istio/virtualservice-crosscloud.yaml.j2"
    assert (
        "VirtualService/api-crosscloud: route 'crosscloud' sends traffic to addtocloud-api.aws twice"
    ) in str(error)
