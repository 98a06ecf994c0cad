"""`orchestrator render` as a user runs it: exit codes, output forms, and nothing written on failure."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.helpers import copy_estate, run_cli


def test_render_prod_prints_valid_yaml_for_three_clusters() -> None:
    result = run_cli("render", "api", "--env", "prod")
    assert result.returncode == 0, result.stderr
    documents = [d for d in yaml.safe_load_all(result.stdout) if d]
    clusters = {d["metadata"]["labels"]["addtocloud.io/cluster"] for d in documents}
    assert clusters == {"aws", "azure", "gcp"}
    weights = [
        [r["weight"] for r in d["spec"]["http"][-1]["route"]]
        for d in documents
        if d["kind"] == "VirtualService" and d["metadata"]["name"] == "api-crosscloud"
    ]
    assert weights == [[60, 30, 10]] * 3
    # The emulator's fault knobs are for emulated clusters only.
    assert "sim.addtocloud.io" not in result.stdout


def test_render_local_keeps_the_emulators_annotations() -> None:
    result = run_cli("render", "api", "--env", "local", "--set", "sim.errorRate=0.3")
    assert result.returncode == 0, result.stderr
    pods = [
        d["spec"]["template"]["metadata"]["annotations"]
        for d in yaml.safe_load_all(result.stdout)
        if d and d["kind"] == "Deployment"
    ]
    assert [(p["sim.addtocloud.io/error-rate"], p["sim.addtocloud.io/latency-ms"]) for p in pods] == [
        ("0.3", "0")
    ] * 3


def test_set_path_no_template_reads_exits_2_naming_the_closest() -> None:
    result = run_cli("render", "api", "--env", "local", "--set", "replcas=3")
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .endswith(
            "--set replcas: no template of api reads this value when rendering local; did you mean replicas?"
        )
    )
    missing = run_cli("render", "api", "--env", "local", "--set", "replicas")
    assert missing.returncode == 2
    assert "--set replicas: expected KEY=VALUE" in missing.stderr
    assert "--set: --set" not in missing.stderr


def test_render_json_summary_and_one_cluster() -> None:
    result = run_cli("render", "frontend", "--env", "prod", "--cluster", "gcp", "-o", "json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert [c["cluster"] for c in summary["clusters"]] == ["gcp"]
    assert "Deployment/frontend" in summary["clusters"][0]["objects"]
    assert len(summary["hash"]) == 64


def test_render_writes_one_file_per_cluster(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_cli("render", "api", "--env", "local", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["aws.yaml", "azure.yaml", "gcp.yaml"]


def test_schema_failure_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_cli("render", "api", "--env", "local", "--set", "replicas=three", "-o", str(out))
    assert result.returncode == 2
    assert "Deployment/api" in result.stderr and "spec.replicas" in result.stderr
    assert not out.exists() or not any(out.iterdir())


def test_unknown_service_and_environment_exit_2_listing_known_names() -> None:
    service = run_cli("render", "billing", "--env", "prod")
    assert service.returncode == 2
    assert "known services: api, frontend" in service.stderr
    env = run_cli("render", "api", "--env", "qa")
    assert env.returncode == 2
    assert "known environments: dev, local, local-prod, prod, staging" in env.stderr


def test_bad_configuration_exit_2_naming_file_line_key(tmp_path: Path) -> None:
    estate = copy_estate(tmp_path)
    env_file = estate / "environments/prod.yaml"
    env_file.write_text(env_file.read_text().replace("weight: 60", "weight: sixty"))
    result = run_cli("render", "api", "--env", "prod", "--root", str(estate))
    assert result.returncode == 2
    assert "environments/prod.yaml:8: clusters[0].weight" in result.stderr


def test_undefined_template_variable_exit_2(tmp_path: Path) -> None:
    estate = copy_estate(tmp_path)
    template = estate / "templates/k8s/pdb.yaml.j2"
    template.write_text(template.read_text().replace("values.pdb.minAvailable", "values.pdb.minAvailabel"))
    result = run_cli("render", "api", "--env", "prod", "--root", str(estate))
    assert result.returncode == 2
    assert "templates/k8s/pdb.yaml.j2:9" in result.stderr and "minAvailabel" in result.stderr


def test_schema_command_exports_both_formats(tmp_path: Path) -> None:
    result = run_cli("schema", "--output-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    pipeline = json.loads((tmp_path / "pipeline.schema.json").read_text())
    environment = json.loads((tmp_path / "environment.schema.json").read_text())
    assert "strategy" in pipeline["properties"]
    assert "clusters" in environment["properties"]


def test_yaml_syntax_error_and_unknown_key_exit_2_naming_file_and_line(tmp_path: Path) -> None:
    estate = copy_estate(tmp_path)
    pipeline = estate / "pipelines/api.yaml"
    pipeline.write_text(pipeline.read_text().replace("  port: 8080\n", "  port: [8080\n"))
    result = run_cli("render", "api", "--env", "prod", "--root", str(estate))
    assert result.returncode == 2
    assert "pipelines/api.yaml:" in result.stderr and "YAML syntax error" in result.stderr

    estate2 = copy_estate(tmp_path / "second")
    env_file = estate2 / "environments/staging.yaml"
    env_file.write_text(
        env_file.read_text().replace("namespace: addtocloud-staging", "namespace: x\nnamspace: y")
    )
    result = run_cli("render", "api", "--env", "staging", "--root", str(estate2))
    assert result.returncode == 2
    assert "environments/staging.yaml:4: namspace: unknown key" in result.stderr
