"""A commit's tree for the server's jobs: made once under the state folder, reused (and touched) while
used, removed once no one has asked for it in a day; the checkout itself for its HEAD."""

from __future__ import annotations

import os
import time
from pathlib import Path

from orchestrator.gitops.checkouts import UNUSED_SECONDS, project_at, prune_unused
from tests.webhook_helpers import git


def repository(root: Path, versions: int) -> list[str]:
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    shas = []
    for version in range(versions):
        (root / "VERSION").write_text(f"{version}\n")
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", f"v{version}")
        shas.append(git(root, "rev-parse", "HEAD"))
    return shas


def age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_trees_are_made_once_reused_and_removed_a_day_after_their_last_use(tmp_path: Path) -> None:
    root, state = tmp_path / "checkout", tmp_path / "state"
    first, second, third, head = repository(root, 4)
    folder = state / "checkouts"

    project, sha = project_at(root, state, head)
    assert (project.root, sha) == (root, head) and not folder.exists()  # HEAD: the checkout itself

    project, sha = project_at(root, state, first)
    assert project.root == folder / first and sha == first
    assert (folder / first / "VERSION").read_text() == "0\n"

    # Used again after a day: touched, so the next new tree does not remove it.
    age(folder / first, UNUSED_SECONDS + 60)
    project_at(root, state, first)
    project_at(root, state, second)
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == sorted([first, second])

    # A day unused: removed when another tree is made; the one just made stays whatever its age.
    age(folder / first, UNUSED_SECONDS + 60)
    age(folder / second, UNUSED_SECONDS - 600)
    project_at(root, state, third)
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == sorted([second, third])
    assert not [p for p in folder.iterdir() if p.name.startswith(".removing-")]

    # Asked for again, it is made again.
    project, _ = project_at(root, state, first)
    assert (project.root / "VERSION").read_text() == "0\n"


def test_pruning_keeps_the_tree_it_is_told_to_and_what_is_not_a_tree(tmp_path: Path) -> None:
    root, state = tmp_path / "checkout", tmp_path / "state"
    first, second, _ = repository(root, 3)
    project_at(root, state, first)
    project_at(root, state, second)
    folder = state / "checkouts"
    for name in (first, second):
        age(folder / name, UNUSED_SECONDS * 3)
    assert prune_unused(folder, keep=second) == [first]
    assert (folder / second / "VERSION").read_text() == "1\n"
    assert (folder / f".{first}.lock").exists()  # lock files stay: another process may wait on one
