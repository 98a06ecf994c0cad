"""Which services a push changes, from the paths its commits touched.

`services/<name>/**` and `pipelines/<name>.yaml` (or `<name>.values.schema.json`) belong to one service;
`templates/**` and `environments/**` are shared, so a change there changes every service. Other paths
(docs, the orchestrator's own files) change none.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

SHARED_FOLDERS = ("templates/", "environments/")
# GitHub lists at most 20 commits in a push payload; a push with more may touch paths the payload omits,
# so it is treated as changing everything (a service with nothing new is re-rendered to the same release).
PAYLOAD_COMMIT_LIMIT = 20


def changed_paths(payload: dict[str, Any]) -> tuple[set[str], bool]:
    """The paths the push's commits added, modified or removed, and whether the list may be incomplete."""
    paths: set[str] = set()
    commits = payload.get("commits")
    commits = commits if isinstance(commits, list) else []
    for commit in [*commits, payload.get("head_commit")]:
        if not isinstance(commit, dict):
            continue
        for key in ("added", "modified", "removed"):
            listed = commit.get(key)
            if isinstance(listed, list):
                paths.update(p for p in listed if isinstance(p, str))
    return paths, len(commits) >= PAYLOAD_COMMIT_LIMIT


def services_changed(paths: Iterable[str], known: Iterable[str], *, everything: bool = False) -> list[str]:
    """The known services the paths change, sorted."""
    names = sorted(set(known))
    if everything:
        return names
    changed: set[str] = set()
    for path in paths:
        if path.startswith(SHARED_FOLDERS):
            return names
        parts = path.split("/")
        if len(parts) >= 3 and parts[0] == "services":
            changed.add(parts[1])
        elif len(parts) == 2 and parts[0] == "pipelines":
            for suffix in (".yaml", ".values.schema.json"):
                if parts[1].endswith(suffix):
                    changed.add(parts[1][: -len(suffix)])
    return [name for name in names if name in changed]
