"""Promotion and rollback as users meet them, through the CLI against `orchestrator sim up`.

`promote api --to local-prod` rolls out the release that Succeeded in `local` unchanged: every cluster runs
the same image digest, rendered as the templates were at the release's commit (later commits and edits of
the checkout change nothing), and the release's trail names both environments. It waits in
AwaitingApproval where the environment requires one; a viewer's approve is refused, an approver's runs it.
Refusals: an environment not next on the path (exit 2, naming it), a source whose last deployment did not
Succeed, a release that never ran there, a source that drifted from its commit (exit 1). `rollback` makes a
revert commit whose files equal the earlier release's commit and leaves every cluster on that release;
freeze windows hold both back.
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.e2e.test_approvals_cli import users
from tests.e2e.test_deploy_cli import CLUSTERS, kubectl_json
from tests.e2e.test_gitops_cli import ROLLING, git
from tests.integration.rollout_fixtures import estate_with_strategy
from tests.services.identity import Cli

IMAGE_A = "registry.addtocloud.local/addtocloud/api@sha256:" + "a" * 64
IMAGE_B = "registry.addtocloud.local/addtocloud/api@sha256:" + "b" * 64


def checkout(root: Path, *args: str) -> str:
    """git in the project checkout (a repository: promotion renders a release's own commit)."""
    return subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def kubectl(env: dict[str, str], cluster: str, *args: str) -> None:
    kubeconfig = Path(env["ORCHESTRATOR_STATE_DIR"]) / "sim" / "kubeconfig"
    subprocess.run(
        ["kubectl", "--kubeconfig", str(kubeconfig), "--context", f"sim-{cluster}", *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )


def git_estate(root: Path, *, approval: bool = True) -> Path:
    estate_with_strategy(root, ROLLING)
    if not approval:
        prod = root / "environments" / "local-prod.yaml"
        prod.write_text(prod.read_text().replace("  required: true\n", "  required: false\n"))
    checkout(root, "init", "-q", "-b", "main")
    checkout(root, "add", "-A")
    checkout(root, "commit", "-q", "-m", "first")
    return root


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def live_api(env: dict[str, str], cluster: str, namespace: str) -> dict[str, Any]:
    """What one cluster runs for the api: the Deployment's image and env, and its pods' version labels."""
    deployment = kubectl_json(env, cluster, "get", "deployment", "api", "-n", namespace)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    pods = kubectl_json(env, cluster, "get", "pods", "-n", namespace, "-l", "app.kubernetes.io/instance=api")
    return {
        "image": container["image"],
        "env": {e["name"]: e.get("value") for e in container.get("env", [])},
        "versions": {p["metadata"]["labels"]["version"] for p in pods["items"]},
        "version": deployment["spec"]["template"]["metadata"]["labels"]["version"],
    }


def gitops(env: dict[str, str]) -> Path:
    return Path(env["ORCHESTRATOR_STATE_DIR"]) / "gitops" / "default.git"


def test_promote_rolls_out_the_same_digest_rendered_at_the_release_commit(
    tmp_path: Path, running_sim: dict[str, str]
) -> None:
    root = git_estate(tmp_path / "estate", approval=False)
    cli = Cli(tmp_path, {**running_sim, "ORCHESTRATOR_ROOT": str(root)})
    never = cli("promote", "api", "--to", "local-prod")
    assert never.returncode == 1 and "api was never deployed to local" in never.stderr, never.stderr

    assert cli("deploy", "api", "--env", "local", "--image", IMAGE_A).returncode == 0
    [source] = cli.json("history", "api")
    # Later commits change the templates' values: the promotion renders the release's commit, not HEAD.
    edit(root / "pipelines" / "api.yaml", "LOG_LEVEL: info", "LOG_LEVEL: trace")
    checkout(root, "commit", "-q", "-am", "later")
    edit(root / "pipelines" / "api.yaml", 'PORT: "8080"', 'PORT: "9090"')  # and an uncommitted edit

    promoted = cli("promote", "api", "--to", "local-prod")
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr
    assert f"release {source['release']['id'][:8]}" in promoted.stdout
    assert "from local to local-prod" in promoted.stdout
    [deployment] = cli.json("history", "api", "--env", "local-prod")
    assert (deployment["kind"], deployment["phase"]) == ("promote", "Succeeded")
    assert deployment["release"]["id"] == source["release"]["id"]  # the one release, not a new one
    for cluster in CLUSTERS:
        before = live_api(cli.env, cluster, "addtocloud")
        after = live_api(cli.env, cluster, "addtocloud-prod")
        assert after["image"] == before["image"] == IMAGE_A
        assert after["env"]["LOG_LEVEL"] == "info" and after["env"]["PORT"] == "8080"
        assert after["env"]["ADDTOCLOUD_ENVIRONMENT"] == "local-prod"  # the target's own values
        assert after["versions"] == {after["version"]}

    repository = gitops(cli.env)
    subject = git(repository, "log", "-1", "--format=%s").strip()
    assert subject == f"api: promote release {source['release']['id'][:8]} from local to local-prod"
    assert git(repository, "log", "-1", "--format=%(trailers:key=Kind,valueonly)").strip() == "promote"
    assert sorted(git(repository, "ls-tree", "-r", "--name-only", "HEAD", "local-prod").split()) == [
        f"local-prod/{cluster}/api.yaml" for cluster in CLUSTERS
    ]

    [release] = cli.json("releases", "api")
    assert release["verified_in"] == ["local", "local-prod"]
    assert [(s["environment"], s["kind"]) for s in release["trail"]] == [
        ("local", "deploy"),
        ("local-prod", "promote"),
    ]
    listed = cli("releases", "api")
    assert listed.returncode == 0
    assert f"local (deploy {source['id'][:8]}), local-prod (promote {deployment['id'][:8]})" in listed.stdout

    # Not next on the path: bad usage, naming the path; nothing recorded.
    for args, said in (
        (("--to", "dev"), "--to dev: dev is the first environment of api's promotion path"),
        (("--to", "local"), "--to local: local is the first environment of api's promotion path"),
        (("--to", "local-prod", "--from", "dev"), "--from dev: local-prod is not next after dev"),
    ):
        refused = cli("promote", "api", *args)
        assert refused.returncode == 2, refused.stderr
        assert said in refused.stderr and "(local -> local-prod; dev -> staging -> prod)" in refused.stderr
    unknown = cli("promote", "api", "--to", "nowhere")
    assert unknown.returncode == 2 and "unknown environment 'nowhere'" in unknown.stderr
    assert len(cli.json("history", "api")) == 2


def test_promotion_refuses_a_source_that_did_not_succeed_or_a_release_it_never_ran(
    tmp_path: Path, running_sim: dict[str, str]
) -> None:
    root = git_estate(tmp_path / "estate", approval=False)
    cli = Cli(tmp_path, {**running_sim, "ORCHESTRATOR_ROOT": str(root)})
    assert cli("deploy", "api", "--env", "local", "--image", IMAGE_A).returncode == 0
    local = root / "environments" / "local.yaml"
    good = local.read_text()
    local.write_text(good + "gitops: {repository: ../nowhere.git}\n")  # the next deploy fails, untouched
    failed = cli("deploy", "api", "--env", "local", "--image", IMAGE_B)
    assert failed.returncode == 1
    local.write_text(good)
    [bad, _] = cli.json("history", "api")

    refused = cli("promote", "api", "--to", "local-prod")
    assert refused.returncode == 1
    assert f"the last deployment of api in local ({bad['id'][:8]}" in refused.stderr
    assert "is Failed, not Succeeded" in refused.stderr

    assert cli("deploy", "api", "--env", "local", "--image", IMAGE_A).returncode == 0  # Succeeded again
    never = cli("promote", "api", "--to", "local-prod", "--release", bad["release"]["id"][:8])
    assert never.returncode == 1
    assert f"release {bad['release']['id'][:8]} of api never Succeeded in local" in never.stderr
    malformed = cli("promote", "api", "--to", "local-prod", "--release", "zz")
    assert malformed.returncode == 2 and "'zz' is not a release id" in malformed.stderr
    assert cli.json("history", "api", "--env", "local-prod") == []

    # A source whose cluster no longer runs what it committed does not vouch for its release.
    kubectl(cli.env, "gcp", "set", "env", "deployment/api", "-n", "addtocloud", "LOG_LEVEL=debug")
    drifted = cli("promote", "api", "--to", "local-prod")
    assert drifted.returncode == 1
    assert "api in local has drifted from its last commit" in drifted.stderr, drifted.stderr
    assert "gcp: Deployment/api spec.template.spec.containers[" in drifted.stderr
    assert "committed info, live debug" in drifted.stderr
    assert cli.json("history", "api", "--env", "local-prod") == []
    kubectl(cli.env, "gcp", "set", "env", "deployment/api", "-n", "addtocloud", "LOG_LEVEL=info")
    promoted = cli("promote", "api", "--to", "local-prod")
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr


def test_promotion_waits_for_an_approver_and_runs_once_approved(
    tmp_path: Path, running_sim: dict[str, str]
) -> None:
    root = git_estate(tmp_path / "estate")
    cli = Cli(tmp_path, {**running_sim, "ORCHESTRATOR_ROOT": str(root)})
    token = users(cli)
    assert cli("deploy", "api", "--env", "local", "--image", IMAGE_A, token=token["dev"]).returncode == 0

    waiting = cli("promote", "api", "--to", "local-prod", "--no-wait", token=token["dev"])
    assert waiting.returncode == 0, waiting.stdout + waiting.stderr
    [deployment] = cli.json("history", "api", "--env", "local-prod")
    assert (deployment["kind"], deployment["phase"]) == ("promote", "AwaitingApproval")
    short = deployment["id"][:8]
    assert f"`orchestrator approve {short}`" in waiting.stdout
    for cluster in CLUSTERS:  # nothing touched before the approval
        assert kubectl_json(cli.env, cluster, "get", "deployments", "-n", "addtocloud-prod")["items"] == []

    refused = cli("approve", short, token=token["view"])
    assert refused.returncode == 1
    assert "view@example.com (viewer) may not approve in local-prod" in refused.stderr
    assert cli.json("history", "api", "--env", "local-prod")[0]["phase"] == "AwaitingApproval"

    approved = cli("approve", short, token=token["admin"])
    assert approved.returncode == 0, approved.stdout + approved.stderr
    [done] = cli.json("history", "api", "--env", "local-prod")
    assert done["phase"] == "Succeeded" and done["gitops_commit"]
    started = next(e for e in done["events"] if (e["data"] or {}).get("event") == "approve")
    assert started["actor"] == "admin@example.com"
    for cluster in CLUSTERS:
        assert live_api(cli.env, cluster, "addtocloud-prod")["image"] == IMAGE_A


def test_rollback_is_a_revert_commit_and_every_cluster_ends_on_the_previous_release(
    tmp_path: Path, running_sim: dict[str, str]
) -> None:
    root = git_estate(tmp_path / "estate")
    cli = Cli(tmp_path, {**running_sim, "ORCHESTRATOR_ROOT": str(root)})
    nothing = cli("rollback", "api", "--env", "local")
    assert nothing.returncode == 1 and "api never Succeeded in local" in nothing.stderr

    assert cli("deploy", "api", "--env", "local", "--image", IMAGE_A).returncode == 0
    first = {cluster: live_api(cli.env, cluster, "addtocloud") for cluster in CLUSTERS}
    second = cli("deploy", "api", "--env", "local", "--image", IMAGE_B, "--set", "env.RELEASE=2")
    assert second.returncode == 0, second.stdout + second.stderr
    [undone, restored] = cli.json("history", "api")
    assert {live_api(cli.env, c, "addtocloud")["image"] for c in CLUSTERS} == {IMAGE_B}

    # A freeze window holds a rollback back like any other change.
    local = root / "environments" / "local.yaml"
    open_environment = local.read_text()
    now = datetime.now(UTC).replace(microsecond=0)
    start, end = (now - timedelta(hours=1)).isoformat(), (now + timedelta(hours=1)).isoformat()
    window = f"freezeWindows:\n  - {{start: {start}, end: {end}, reason: audit}}\n"
    local.write_text(open_environment + window)
    frozen = cli("rollback", "api", "--env", "local")
    assert frozen.returncode == 1
    assert "rollback to local refused" in frozen.stderr and "(audit) is in force" in frozen.stderr
    local.write_text(open_environment)

    rolled = cli("rollback", "api", "--env", "local")
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert f"undo deployment {undone['id'][:8]}" in rolled.stdout
    [rollback, *_] = cli.json("history", "api")
    assert (rollback["kind"], rollback["phase"]) == ("rollback", "Succeeded")
    assert rollback["undoes"] == undone["id"]
    assert rollback["release"]["id"] == restored["release"]["id"]
    assert rollback["strategy"] == "rolling"  # fast: no canary steps, no analysis

    repository = gitops(cli.env)
    log = git(repository, "log", "--format=%H %s").splitlines()
    assert len(log) == 3
    head, subject = log[0].split(" ", 1)
    assert head == rollback["gitops_commit"]
    assert subject == f"Revert api in local to release {restored['release']['id'][:8]}"
    body = git(repository, "log", "-1", "--format=%b", head)
    assert f"This reverts deployment {undone['id']} (commit {undone['gitops_commit']})" in body
    trailer = "--format=%(trailers:key=Undoes-Deployment,valueonly)"
    assert git(repository, "log", "-1", trailer, head).strip() == undone["id"]
    assert git(repository, "diff", "--stat", restored["gitops_commit"], head) == ""  # the same files
    assert git(repository, "diff", "--stat", undone["gitops_commit"], head) != ""

    for cluster in CLUSTERS:
        now_live = live_api(cli.env, cluster, "addtocloud")
        assert now_live["image"] == IMAGE_A and "RELEASE" not in now_live["env"]
        assert now_live["version"] == first[cluster]["version"]
        assert now_live["versions"] == {first[cluster]["version"]}  # every pod back on the first release

    # Nothing earlier to go back to (the release the rollback left is not bounced back to) ...
    again = cli("rollback", "api", "--env", "local")
    assert again.returncode == 1 and "no earlier good release to roll back to" in again.stderr
    # ... unless it is named.
    forward = cli("rollback", "api", "--env", "local", "--to", undone["release"]["id"][:8], "-o", "json")
    assert forward.returncode == 0, forward.stdout + forward.stderr
    assert json.loads(forward.stdout)["undoes"] == rollback["id"]
    assert {live_api(cli.env, c, "addtocloud")["image"] for c in CLUSTERS} == {IMAGE_B}
    same = cli("rollback", "api", "--env", "local", "--to", undone["release"]["id"][:8])
    assert same.returncode == 1 and "local already runs release" in same.stderr
