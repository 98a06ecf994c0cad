"""`--set` overrides: parsed as KEY=VALUE, and refused when no template reads the path they set."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.config import Project
from orchestrator.errors import ConfigError
from orchestrator.render.engine import Renderer
from orchestrator.render.values import ValueReads, parse_set_overrides
from tests.helpers import REPO


@pytest.fixture(scope="module")
def project() -> Project:
    return Project(REPO)


def render(project: Project, env: str, overrides: dict[str, Any], cluster: str | None = None) -> list[Any]:
    return Renderer(project).render_environment(
        project.pipeline("api"), project.environment(env), overrides=overrides, only_cluster=cluster
    )


def refusal(project: Project, env: str, overrides: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        render(project, env, overrides)
    assert caught.value.exit_code == 2
    return str(caught.value)


def test_a_misspelt_path_is_refused_naming_the_closest(project: Project) -> None:
    assert refusal(project, "local", {"replcas": 3}) == (
        "--set replcas: no template of api reads this value when rendering local; did you mean replicas?"
    )
    assert refusal(project, "prod", {"resources": {"requests": {"cpux": "1"}}}) == (
        "--set resources.requests.cpux: no template of api reads this value when rendering prod; "
        "did you mean resources.requests.cpu?"
    )


def test_a_path_far_from_anything_gets_no_guess(project: Project) -> None:
    assert refusal(project, "local", {"zzzzzzzz": 1}) == (
        "--set zzzzzzzz: no template of api reads this value when rendering local"
    )


def test_a_value_only_emulated_clusters_read_is_refused_for_real_ones(project: Project) -> None:
    assert refusal(project, "prod", {"sim": {"errorRate": 0.3}}) == (
        "--set sim.errorRate: no template of api reads this value when rendering prod "
        "(the values define it, but it has no effect on prod)"
    )
    (rendered,) = render(project, "local", {"sim": {"errorRate": 0.3}}, cluster="gcp")
    assert rendered.cluster == "gcp"


def test_read_paths_and_wholly_read_mappings_are_accepted(project: Project) -> None:
    plain = render(project, "local", {})
    changed = render(project, "local", {"replicas": 5, "env": {"FEATURE": "on"}, "component": "edge"})
    for before, after in zip(plain, changed, strict=True):
        assert before.version != after.version
        deployment = next(o for o in after.objects if o["kind"] == "Deployment")
        env = {e["name"]: e["value"] for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["FEATURE"] == "on"  # a new key under a mapping a template iterates (dictsort)
        assert deployment["spec"]["replicas"] == 5
        assert deployment["metadata"]["labels"]["app.kubernetes.io/component"] == "edge"  # read by the engine


def test_overrides_leave_the_output_as_without_tracking(project: Project) -> None:
    # Values are tracked only when there are overrides; the objects must not depend on it. Staging's
    # replicas are 2 already, so this override changes no value: every set must come out the same.
    tracked = render(project, "staging", {"replicas": 2})
    untracked = render(project, "staging", {})
    assert [s.to_yaml() for s in tracked] == [s.to_yaml() for s in untracked]
    assert [s.manifest_hash for s in tracked] == [s.manifest_hash for s in untracked]


def test_value_reads_knows_prefixes_and_whole_mappings() -> None:
    reads = ValueReads()
    values = reads.wrap({"a": {"b": 1, "c": {"d": 2}}, "env": {"X": "1"}, "n": 3})
    assert values["a"]["c"]["d"] == 2
    assert dict(values["env"].items()) == {"X": "1"}
    assert reads.reads("a.c.d") and reads.reads("a") and reads.reads("a.c")
    assert not reads.reads("a.b") and not reads.reads("n")
    assert reads.reads("env.NEW")  # under a mapping read whole
    assert values.get("missing") is None and not reads.reads("missing.deeper")


def test_set_without_equals_says_what_is_wrong() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_set_overrides(["replicas"])
    assert str(caught.value) == "--set replicas: expected KEY=VALUE"
    with pytest.raises(ConfigError) as caught:
        parse_set_overrides(["a..b=1"])
    assert str(caught.value) == "--set a..b=1: expected KEY=VALUE with KEY like a.b.c"
    assert parse_set_overrides(["sim.errorRate=0.3", "replicas=2"]) == {
        "sim": {"errorRate": 0.3},
        "replicas": 2,
    }


def test_set_values_are_read_as_yaml_1_2_like_the_files() -> None:
    assert parse_set_overrides(["a=yes", "b=10:30", "c=017", "d=true", "e='1.0'", "f=", "g=null"]) == {
        "a": "yes",
        "b": "10:30",
        "c": 17,
        "d": True,
        "e": "1.0",
        "f": "",
        "g": None,
    }
