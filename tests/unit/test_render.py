"""Rendering turns the estate into schema-valid manifests per cluster, with a documented value precedence."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator.config import Project
from orchestrator.errors import ConfigError
from orchestrator.render.engine import ManifestInvalidError, Renderer
from orchestrator.render.validate import validate_manifest
from tests.helpers import REPO, copy_estate


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    for obj in objects:
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            return obj
    raise AssertionError(f"{kind}/{name} not rendered")


@pytest.fixture(scope="module")
def project() -> Project:
    return Project(REPO)


def test_prod_renders_three_clusters_with_the_seed_routing(project: Project) -> None:
    sets = Renderer(project).render_environment(project.pipeline("api"), project.environment("prod"))
    assert [(s.cluster, s.cloud) for s in sets] == [("aws", "aws"), ("azure", "azure"), ("gcp", "gcp")]
    for rendered in sets:
        crosscloud = find(rendered.objects, "VirtualService", "api-crosscloud")
        routes = {r["name"]: r for r in crosscloud["spec"]["http"]}
        default = routes["crosscloud"]["route"]
        assert [(d["destination"]["host"], d["weight"]) for d in default] == [
            ("addtocloud-api.aws", 60),
            ("addtocloud-api.azure", 30),
            ("addtocloud-api.gcp", 10),
        ]
        assert routes["region-us-west"]["match"][0]["headers"]["region"] == {"exact": "us-west"}
        assert routes["region-us-west"]["route"][0]["destination"]["host"] == "addtocloud-api.aws"
        assert routes["region-us-east"]["route"][0]["destination"]["host"] == "addtocloud-api.azure"
        inner = find(rendered.objects, "VirtualService", "api")
        weights = {d["destination"]["subset"]: d["weight"] for d in inner["spec"]["http"][0]["route"]}
        assert weights == {"stable": 100, "canary": 0}
        gateway = find(rendered.objects, "Gateway", "addtocloud-gateway")
        https = gateway["spec"]["servers"][1]
        assert https["hosts"] == ["*.addtocloud.com"]
        assert https["tls"]["credentialName"] == "addtocloud-tls"
        rule = find(rendered.objects, "DestinationRule", "api")
        assert rule["spec"]["trafficPolicy"]["tls"]["mode"] == "ISTIO_MUTUAL"
        assert {s["name"] for s in rule["spec"]["subsets"]} == {"stable", "canary"}
        assert find(rendered.objects, "PeerAuthentication", "api")["spec"]["mtls"]["mode"] == "STRICT"
        find(rendered.objects, "RequestAuthentication", "api-jwt")
        find(rendered.objects, "AuthorizationPolicy", "api-require-jwt")
        deployment = find(rendered.objects, "Deployment", "api")
        pod = deployment["spec"]["template"]
        assert pod["metadata"]["labels"]["version"] == rendered.version
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
        container = pod["spec"]["containers"][0]
        assert container["ports"][0]["containerPort"] == 8080
        assert {"readinessProbe", "livenessProbe", "resources"} <= set(container)
        env = {e["name"]: e["value"] for e in container["env"]}
        assert env["ADDTOCLOUD_CLOUD"] == rendered.cloud


def test_every_object_of_every_environment_is_schema_valid(project: Project) -> None:
    renderer = Renderer(project, validate=False)
    count = 0
    for env in project.environment_names:
        for service in project.service_names:
            for rendered in renderer.render_environment(project.pipeline(service), project.environment(env)):
                for obj in rendered.objects:
                    assert validate_manifest(obj) == [], (env, service, rendered.cluster, obj["kind"])
                    count += 1
    assert count > 80


def test_value_precedence_set_over_cluster_over_environment_over_pipeline(tmp_path: Path) -> None:
    estate = copy_estate(tmp_path)
    env_file = estate / "environments/local.yaml"
    env_file.write_text(
        env_file.read_text().replace(
            "    target: {type: sim, cluster: gcp}\n",
            "    target: {type: sim, cluster: gcp}\n    values: {replicas: 4, env: {LOG_LEVEL: warn}}\n",
        )
    )
    project = Project(estate)
    renderer = Renderer(project)
    pipeline, environment = project.pipeline("api"), project.environment("local")

    def replicas_and_level(cluster: str, overrides: dict[str, Any]) -> tuple[int, str]:
        rendered = renderer.render_cluster(
            pipeline, environment, environment.cluster(cluster), overrides=overrides
        )
        deployment = find(rendered.objects, "Deployment", "api")
        env = {e["name"]: e["value"] for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
        return deployment["spec"]["replicas"], env["LOG_LEVEL"]

    assert replicas_and_level("aws", {}) == (2, "info")  # environment (2) over pipeline (3)
    assert replicas_and_level("gcp", {}) == (4, "warn")  # cluster over environment
    assert replicas_and_level("gcp", {"replicas": 5}) == (5, "warn")  # --set over cluster


def test_output_is_stable_and_hashed(project: Project) -> None:
    first = Renderer(project).render_environment(project.pipeline("api"), project.environment("staging"))
    second = Renderer(project).render_environment(project.pipeline("api"), project.environment("staging"))
    assert [s.to_yaml() for s in first] == [s.to_yaml() for s in second]
    assert [s.manifest_hash for s in first] == [s.manifest_hash for s in second]
    kinds = [o["kind"] for o in first[0].objects]
    assert kinds.index("ServiceAccount") < kinds.index("Deployment") < kinds.index("VirtualService")
    changed = Renderer(project).render_environment(
        project.pipeline("api"), project.environment("staging"), overrides={"replicas": 7}
    )
    assert changed[0].manifest_hash != first[0].manifest_hash


def test_undefined_variable_names_template_line_and_name(tmp_path: Path) -> None:
    estate = copy_estate(tmp_path)
    template = estate / "templates/k8s/service.yaml.j2"
    template.write_text(template.read_text().replace("{{ values.port }}", "{{ values.prot }}"))
    project = Project(estate)
    with pytest.raises(ConfigError) as caught:
        Renderer(project).render_environment(project.pipeline("api"), project.environment("local"))
    err = caught.value
    assert err.file == "templates/k8s/service.yaml.j2"
    assert err.line == 14
    assert "prot" in str(err)


def test_renderers_share_compiled_templates_but_see_a_template_edited_since(tmp_path: Path) -> None:
    # Compiled code is kept for the process (a worker makes a renderer per rollout): an edited template
    # must be compiled again, and a failing one still named by its line.
    estate = copy_estate(tmp_path)
    project = Project(estate)
    before = Renderer(project).render_environment(project.pipeline("api"), project.environment("local"))
    service = find(before[0].objects, "Service", "api")
    template = estate / "templates/k8s/service.yaml.j2"
    template.write_text(template.read_text().replace("{{ values.port }}", "{{ values.port + 1 }}"))
    project = Project(estate)
    after = Renderer(project).render_environment(project.pipeline("api"), project.environment("local"))
    assert find(after[0].objects, "Service", "api")["spec"]["ports"][0]["port"] == (
        service["spec"]["ports"][0]["port"] + 1
    )
    template.write_text(template.read_text().replace("{{ values.port + 1 }}", "{{ values.prot }}"))
    with pytest.raises(ConfigError) as caught:
        Renderer(Project(estate)).render_environment(project.pipeline("api"), project.environment("local"))
    assert (caught.value.file, caught.value.line) == ("templates/k8s/service.yaml.j2", 14)


def test_object_failing_its_schema_is_named_by_object_and_field(tmp_path: Path) -> None:
    estate = copy_estate(tmp_path)
    project = Project(estate)
    with pytest.raises(ManifestInvalidError) as caught:
        Renderer(project).render_environment(
            project.pipeline("api"), project.environment("local"), overrides={"replicas": "three"}
        )
    assert "Deployment/api" in str(caught.value)
    assert "spec.replicas" in str(caught.value)
    assert caught.value.exit_code == 2


def test_istio_object_failing_its_schema(tmp_path: Path) -> None:
    estate = copy_estate(tmp_path)
    template = estate / "templates/istio/destinationrule.yaml.j2"
    template.write_text(
        template.read_text().replace("mode: ISTIO_MUTUAL", "mode: ISTIO_MUTUAL\n      sni: [1]")
    )
    project = Project(estate)
    with pytest.raises(ManifestInvalidError) as caught:
        Renderer(project).render_environment(project.pipeline("api"), project.environment("local"))
    assert "DestinationRule/api" in str(caught.value)
    assert "spec.trafficPolicy.tls.sni" in str(caught.value)
