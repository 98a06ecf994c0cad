"""The GitOps benchmark runs, and a one-service change writes only that service's objects.

Nothing is timed here (benchmarks measure, tests check): a small estate, and the git objects counted.
"""

from __future__ import annotations

import json

from tests.helpers import run_benchmark


def test_a_one_service_change_writes_three_files_their_trees_and_one_commit() -> None:
    run = run_benchmark("gitops.py", "--services", "3", "--json")
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["estate_files"] == 27  # 3 services x 3 environments x 3 clusters
    # 3 blobs (a file per cluster) + 5 trees (root, prod/, and a folder per cluster) + 1 commit.
    assert result["objects_per_change"] == 9
