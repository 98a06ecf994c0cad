"""Environment policies not built yet refuse a deploy instead of being accepted and ignored."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from orchestrator.config import Project
from orchestrator.config.environment import ApprovalPolicy, FreezeWindow
from orchestrator.rollout.policy import PolicyNotBuiltError, refuse_unenforced_policies
from tests.helpers import REPO

NOW = datetime(2026, 12, 24, 12, 0, tzinfo=UTC)


def test_an_environment_without_policies_deploys() -> None:
    refuse_unenforced_policies(Project(REPO).environment("local"), now=NOW)


def test_a_freeze_window_refuses_only_while_it_is_in_force() -> None:
    window = FreezeWindow(start=datetime(2026, 12, 24), end=datetime(2026, 12, 27), reason="holidays")
    frozen = Project(REPO).environment("local").model_copy(update={"freeze_windows": [window]})
    with pytest.raises(PolicyNotBuiltError) as refused:
        refuse_unenforced_policies(frozen, now=NOW)
    assert str(refused.value) == (
        "environments/local.yaml: deploy to local refused, nothing was recorded or applied: "
        "a freeze window is in force until 2026-12-27T00:00:00+00:00 (holidays), "
        "and freeze windows are not built yet"
    )
    assert refused.value.exit_code == 1
    refuse_unenforced_policies(frozen, now=datetime(2026, 12, 27, tzinfo=UTC))  # over: the deploy goes ahead


def test_prod_asks_for_approvals() -> None:
    with pytest.raises(
        PolicyNotBuiltError, match=r"approval\.required is true, and approvals are not built yet$"
    ):
        refuse_unenforced_policies(Project(REPO).environment("prod"), now=NOW)
    relaxed = (
        Project(REPO).environment("local").model_copy(update={"approval": ApprovalPolicy(required=False)})
    )
    refuse_unenforced_policies(relaxed, now=NOW)
