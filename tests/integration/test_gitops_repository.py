"""The GitOps repository against real git: commits, trailers, races between writers, and refusals."""

from __future__ import annotations

import subprocess
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from orchestrator.gitops.repository import Author, GitOpsError, GitOpsRepository

ALICE = Author("alice", "alice@example.com")


def git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


def bare_remote(path: Path) -> Path:
    git("init", "--quiet", "--bare", "--initial-branch=main", str(path))
    return path


def test_a_commit_holds_the_files_with_parseable_trailers_and_an_unchanged_set_makes_none(
    tmp_path: Path,
) -> None:
    repository = GitOpsRepository(tmp_path / "default.git")
    message = "api: deploy\n\nbody\n\nDeployment-Id: 1234\nRelease: r1\n"
    first = repository.commit({"local/aws/api.yaml": b"a: 1\n"}, message, author=ALICE)
    assert first.created
    assert repository.read(first.sha, "local/aws/api.yaml") == b"a: 1\n"
    [entry] = repository.log()
    assert entry.sha == first.sha and entry.trailers == {"Deployment-Id": "1234", "Release": "r1"}
    author = git("--git-dir", str(tmp_path / "default.git"), "log", "-1", "--format=%an <%ae>|%cn")
    assert author.strip() == "alice <alice@example.com>|AddToCloud Orchestrator"

    again = repository.commit({"local/aws/api.yaml": b"a: 1\n"}, message, author=ALICE)
    assert not again.created and again.sha == first.sha
    assert len(repository.log()) == 1


def test_a_service_owns_its_files_only_a_cluster_that_left_loses_its_file(tmp_path: Path) -> None:
    repository = GitOpsRepository(tmp_path / "default.git")
    repository.commit(
        {"e/aws/api.yaml": b"1", "e/gcp/api.yaml": b"1", "e/aws/web.yaml": b"w"}, "m", author=ALICE
    )
    second = repository.commit({"e/aws/api.yaml": b"2"}, "m", author=ALICE, owns="e/*/api.yaml")
    assert repository.files(second.sha, "e") == {"e/aws/api.yaml": b"2", "e/aws/web.yaml": b"w"}


def _commit_one(args: tuple[str, str, int]) -> str:
    mirror, remote, number = args
    repository = GitOpsRepository(Path(mirror), remote=remote)
    return repository.commit(
        {f"env/aws/svc{number}.yaml": f"n: {number}\n".encode()}, f"svc{number}", author=ALICE
    ).sha


@pytest.mark.parametrize("shared_mirror", [False, True], ids=["a-mirror-each", "one-mirror"])
def test_ten_writers_at_once_against_one_bare_remote_lose_nothing(
    tmp_path: Path, shared_mirror: bool
) -> None:
    remote = bare_remote(tmp_path / "remote.git")
    jobs = [
        (str(tmp_path / ("mirror.git" if shared_mirror else f"mirror{n}.git")), str(remote), n)
        for n in range(10)
    ]
    with ProcessPoolExecutor(max_workers=10) as pool:
        shas = list(pool.map(_commit_one, jobs))
    history = git("--git-dir", str(remote), "log", "--format=%H %s", "main").splitlines()
    assert len(history) == 10
    assert {line.split()[0] for line in history} == set(shas)
    tree = git("--git-dir", str(remote), "ls-tree", "-r", "--name-only", "main", "env/aws").split()
    assert tree == sorted(f"env/aws/svc{n}.yaml" for n in range(10))


class _BranchMadeMeanwhile(GitOpsRepository):
    """A mirror whose fetch of a branch the empty remote does not have yet fails, and another writer then
    creates that branch before this mirror lists the remote's heads (the race CI met with ten writers)."""

    def __init__(self, mirror: Path, *, remote: str, rival: GitOpsRepository) -> None:
        super().__init__(mirror, remote=remote)
        self.rival, self.raced = rival, False

    def _git(self, *args: str, **options: Any) -> subprocess.CompletedProcess[bytes]:
        if args[:1] == ("ls-remote",) and not self.raced:
            self.raced = True
            self.rival.commit({"env/aws/rival.yaml": b"r: 1\n"}, "rival", author=ALICE)
        return super()._git(*args, **options)


def test_a_branch_created_between_a_failed_fetch_and_the_listing_is_fetched(tmp_path: Path) -> None:
    remote = bare_remote(tmp_path / "remote.git")
    rival = GitOpsRepository(tmp_path / "rival.git", remote=str(remote))
    ours = _BranchMadeMeanwhile(tmp_path / "ours.git", remote=str(remote), rival=rival)
    result = ours.commit({"env/aws/ours.yaml": b"o: 1\n"}, "ours", author=ALICE)
    assert ours.raced and result.created
    history = git("--git-dir", str(remote), "log", "--format=%s", "main").split()
    assert history == ["ours", "rival"]
    tree = git("--git-dir", str(remote), "ls-tree", "-r", "--name-only", "main").split()
    assert tree == ["env/aws/ours.yaml", "env/aws/rival.yaml"]


def test_an_unreachable_repository_is_named_with_the_cause(tmp_path: Path) -> None:
    repository = GitOpsRepository(tmp_path / "m.git", remote=str(tmp_path / "nowhere.git"))
    with pytest.raises(
        GitOpsError, match=r"nowhere\.git is unreachable: .*does not appear to be a git repository"
    ):
        repository.commit({"f": b"1"}, "m", author=ALICE)


def test_a_push_the_remote_refuses_names_its_reason(tmp_path: Path) -> None:
    remote = bare_remote(tmp_path / "remote.git")
    hook = remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'main is a protected branch' >&2\nexit 1\n")
    hook.chmod(0o755)
    repository = GitOpsRepository(tmp_path / "m.git", remote=str(remote))
    with pytest.raises(GitOpsError, match=r"remote\.git refused the push: .*main is a protected branch"):
        repository.commit({"f": b"1"}, "m", author=ALICE)
    assert git("--git-dir", str(remote), "for-each-ref").strip() == ""


def test_an_https_token_never_appears_in_a_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "ghp_" + "s3cr3t" * 6
    monkeypatch.setenv("GITOPS_TOKEN", secret)
    repository = GitOpsRepository(
        tmp_path / "m.git", remote="https://127.0.0.1:9/estate.git", token_env="GITOPS_TOKEN"
    )
    with pytest.raises(GitOpsError) as caught:
        repository.commit({"f": b"1"}, "m", author=ALICE)
    assert "unreachable" in str(caught.value) and secret not in str(caught.value)
    assert secret not in (tmp_path / "m.git" / "config").read_text()


def test_a_missing_token_variable_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITOPS_TOKEN", raising=False)
    repository = GitOpsRepository(
        tmp_path / "m.git", remote="https://example.invalid/e.git", token_env="GITOPS_TOKEN"
    )
    with pytest.raises(GitOpsError, match=r"\$GITOPS_TOKEN \(its token\) is not set"):
        repository.commit({"f": b"1"}, "m", author=ALICE)
