"""A real rollout on the emulator with a notifier beside it: a canary whose gate fails is rolled back, and
the Slack-shaped message naming the failing gate and its value reaches a receiver that answered 500 three
times, on the fourth try; the rollout's outcome is what it is without notifications."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from orchestrator.config import Project
from orchestrator.notify.notifier import Notifier, RetryPolicy
from orchestrator.sim.server import SimServer
from orchestrator.store import repository as repo
from orchestrator.store.models import Phase
from tests.fakes.receiver import Receiver
from tests.integration.notification_fixtures import deliveries
from tests.integration.rollout_fixtures import estate_with_strategy, sim_engine
from tests.integration.test_canary_gates import GATED, request


def test_a_gate_failing_on_the_emulator_is_announced_after_three_500s_and_the_rollout_still_rolls_back(
    tmp_path: Path, sessions: sessionmaker[Session], sim: SimServer
) -> None:
    with Receiver(answers=[500, 500, 500]) as slack:
        root = estate_with_strategy(tmp_path / "gated", GATED)
        local = root / "environments" / "local.yaml"
        local.write_text(
            local.read_text() + f"notifications:\n  - name: team\n    type: slack\n    url: {slack.url}\n"
            "    triggers: [on-rolled-back]\n"
        )
        project = Project(root)
        engine = sim_engine(project, sessions, sim)
        notifier = Notifier(
            project, sessions, retry=RetryPolicy(6, 0.2, 1.0), poll_interval=0.1, base_url="https://o.test"
        ).start()
        try:
            assert engine.run(engine.create(request())) is Phase.SUCCEEDED
            deployment_id = engine.create(request(overrides={"sim": {"errorRate": 0.3}}))
            assert engine.run(deployment_id) is Phase.ROLLED_BACK
        finally:
            notifier.stop(flush_seconds=10)

    assert [r.status for r in slack.received] == [500, 500, 500, 200]
    message = slack.delivered[0].json()
    blocks = json.dumps(message["blocks"])
    with sessions() as session:
        deployment = repo.get_deployment(session, deployment_id)
        assert deployment.phase == Phase.ROLLED_BACK.value
        failing = [
            e
            for e in repo.events_for(session, deployment_id)
            if e.type == "measurement" and e.data and e.data["phase"] == "Failed"
        ][-1]
    assert failing.data is not None
    value = failing.data["value"]
    figure = f"{value[0] if isinstance(value, list) else value:.4g}"
    assert f"`request-success-rate` = *{figure}*" in blocks
    assert f"request-success-rate = {figure}" in message["text"]
    assert "RolledBack" in blocks and "api" in blocks and "local" in blocks
    [row] = deliveries(sessions, deployment_id)
    assert (row["status"], row["attempts"]) == ("delivered", 4)
