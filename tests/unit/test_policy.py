"""Freeze windows: the one check deploy, retry, an approval (and later promote and rollback) make."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from orchestrator.config import Environment, Project
from orchestrator.config.environment import FreezeWindow
from orchestrator.errors import ConfigError
from orchestrator.identity.principal import Principal
from orchestrator.identity.rules import PermissionDeniedError
from orchestrator.rollout.policy import FrozenError, check_freeze, overridden_windows, under_todays_rules
from orchestrator.store.models import Role
from tests.helpers import REPO

NOW = datetime(2026, 12, 24, 12, 0, tzinfo=UTC)
ADMIN = Principal(email="admin@example.com", role=Role.ADMIN)
DEPLOYER = Principal(email="dev@example.com", role=Role.DEPLOYER)
HOLIDAYS = FreezeWindow(start=datetime(2026, 12, 24), end=datetime(2026, 12, 27), reason="holidays")


def frozen(*windows: FreezeWindow) -> Environment:
    return Project(REPO).environment("local").model_copy(update={"freeze_windows": list(windows)})


def test_an_environment_without_windows_deploys() -> None:
    assert check_freeze(Project(REPO).environment("local"), DEPLOYER, None, NOW) is None


def test_a_window_in_force_refuses_naming_it_and_its_reason() -> None:
    environment = frozen(HOLIDAYS, FreezeWindow(start=datetime(2027, 1, 1), end=datetime(2027, 1, 2)))
    with pytest.raises(FrozenError) as refused:
        check_freeze(environment, DEPLOYER, None, NOW)
    assert str(refused.value) == (
        "environments/local.yaml: deploy to local refused, nothing was recorded or applied: freeze window "
        "from 2026-12-24T00:00:00+00:00 to 2026-12-27T00:00:00+00:00 (holidays) is in force; an admin may "
        "override it with `--override-freeze --reason TEXT`"
    )
    assert refused.value.exit_code == 1
    # The start is in the window, the end is not: at the end the deploy goes ahead.
    with pytest.raises(FrozenError):
        check_freeze(environment, DEPLOYER, None, datetime(2026, 12, 24, tzinfo=UTC))
    assert check_freeze(environment, DEPLOYER, None, datetime(2026, 12, 27, tzinfo=UTC)) is None


def test_an_admin_overrides_with_a_reason_and_the_override_says_who_and_why() -> None:
    environment = frozen(HOLIDAYS)
    override = check_freeze(environment, ADMIN, "security fix CVE-1", NOW)
    assert override is not None
    assert override.message == (
        "freeze window overridden by admin@example.com in local (from 2026-12-24T00:00:00+00:00 to "
        "2026-12-27T00:00:00+00:00 (holidays)): security fix CVE-1"
    )
    assert override.to_data() == {
        "override": "freeze_window",
        "reason": "security fix CVE-1",
        "windows": [
            {"start": "2026-12-24T00:00:00+00:00", "end": "2026-12-27T00:00:00+00:00", "reason": "holidays"}
        ],
    }


def test_an_override_by_anyone_but_an_admin_is_refused_naming_the_rule() -> None:
    with pytest.raises(PermissionDeniedError) as refused:
        check_freeze(frozen(HOLIDAYS), DEPLOYER, "please", NOW)
    assert str(refused.value) == (
        "dev@example.com (deployer) may not override a freeze window in local; "
        "allowed (admins only, whatever the environment's lists say): admin"
    )
    with pytest.raises(PermissionDeniedError, match="needs a token"):
        check_freeze(frozen(HOLIDAYS), None, "please", NOW)


def test_an_override_needs_a_reason_and_a_window_to_override() -> None:
    with pytest.raises(ConfigError, match="needs a reason") as blank:
        check_freeze(frozen(HOLIDAYS), ADMIN, "  ", NOW)
    assert blank.value.exit_code == 2
    with pytest.raises(ConfigError, match="no freeze window of local is in force now") as idle:
        check_freeze(frozen(HOLIDAYS), ADMIN, "just in case", datetime(2027, 1, 5, tzinfo=UTC))
    assert idle.value.exit_code == 2


def test_a_window_an_earlier_override_answered_for_is_not_asked_again() -> None:
    override = check_freeze(frozen(HOLIDAYS), ADMIN, "fix", NOW)
    assert override is not None

    class Event:
        type = "override"
        data = override.to_data()

    covered = overridden_windows([Event()])
    assert check_freeze(frozen(HOLIDAYS), DEPLOYER, None, NOW, covered=covered) is None
    later = FreezeWindow(start=datetime(2026, 12, 24, 6), end=datetime(2026, 12, 25), reason="release freeze")
    with pytest.raises(FrozenError, match=r"release freeze") as refused:
        check_freeze(frozen(HOLIDAYS, later), DEPLOYER, None, NOW, covered=covered)
    assert "holidays" not in str(refused.value)


def test_a_commits_environment_under_todays_rules_keeps_its_clusters_and_takes_the_stricter_rules() -> None:
    from orchestrator.config.environment import ApprovalPolicy

    audit = FreezeWindow(start=datetime(2027, 1, 1), end=datetime(2027, 1, 2), reason="audit")
    at_commit = frozen(HOLIDAYS).model_copy(update={"values": {"replicas": 5}})
    today = frozen(HOLIDAYS, audit).model_copy(
        update={"approval": ApprovalPolicy(required=True, approvers=["alice@example.com"])}
    )
    ruled = under_todays_rules(at_commit, today)
    assert (ruled.clusters, ruled.values) == (at_commit.clusters, {"replicas": 5})
    assert ruled.freeze_windows == [HOLIDAYS, audit]  # each window once
    assert ruled.approval == ApprovalPolicy(required=True, approvers=["alice@example.com"])
    # Required at the commit but no longer today: still required (the stricter), by today's approvers.
    loosened = under_todays_rules(today, frozen())
    assert loosened.approval == ApprovalPolicy(required=True, approvers=["admin"])
    assert loosened.freeze_windows == [HOLIDAYS, audit]
