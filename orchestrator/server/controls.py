"""What the REST API's changing routes and the dashboard's buttons do, in one place: check the caller's
right in the deployment's environment (`rules.require`, before anything is rendered or recorded), act
through the engine, and hand the driving to the jobs. A request never drives a rollout.

`Controls(app.state)` is made per request; `app.state.jobs` is read at each call (tests swap it).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from orchestrator.identity.principal import Principal
from orchestrator.identity.rules import Action, require
from orchestrator.server.rollouts import ServerRollouts
from orchestrator.store import repository as repo
from orchestrator.store.transitions import Event


@dataclass(frozen=True)
class Outcome:
    """What a control did: the deployment, what to say, and the live driver that will act on it (None: a
    job was queued, or nothing needed driving)."""

    deployment_id: uuid.UUID
    message: str
    driver: str | None


class Controls:
    def __init__(self, state: Any) -> None:
        self.state = state
        self.rollouts: ServerRollouts = state.rollouts
        self.sessions = state.sessions

    def authorized(self, caller: Principal, action: Action, ref: str) -> uuid.UUID:
        """The deployment's id, once the caller may do `action` in its environment (404 when there is
        none, 403 when they may not)."""
        with self.sessions() as session:
            deployment = repo.get_deployment(session, ref)
            deployment_id, environment = deployment.id, deployment.environment
        require(caller, action, self.rollouts.project().environment(environment))
        return deployment_id

    def hand_over(self, deployment_id: uuid.UUID, reason: str) -> str | None:
        """Queue a job to drive the deployment unless a live driver holds it (it reads the change itself);
        returns that driver."""
        holder = self.rollouts.engine().driver(deployment_id)
        if holder is not None:
            return holder.owner
        self.state.jobs.enqueue_rollout(deployment_id, reason=reason)
        return None

    def approve(
        self, caller: Principal, ref: str, *, full: bool = False, override_freeze: str | None = None
    ) -> Outcome:
        """End the pause the rollout waits at (`full`: skip every remaining step but promotion)."""
        deployment_id = self.authorized(caller, Action.APPROVE, ref)
        message = self.rollouts.engine().approve(
            deployment_id,
            full=full,
            actor=caller.audit_name(),
            principal=caller,
            override_freeze=override_freeze,
        )
        return Outcome(deployment_id, message, self.hand_over(deployment_id, "approve"))

    def pause(self, caller: Principal, ref: str) -> Outcome:
        deployment_id = self.authorized(caller, Action.PAUSE, ref)
        engine = self.rollouts.engine()
        message = engine.pause(deployment_id, actor=caller.audit_name())
        holder = engine.driver(deployment_id)
        return Outcome(deployment_id, message, holder.owner if holder is not None else None)

    def resume(self, caller: Principal, ref: str) -> Outcome:
        deployment_id = self.authorized(caller, Action.RESUME, ref)
        message = self.rollouts.engine().resume(deployment_id, actor=caller.audit_name())
        return Outcome(deployment_id, message, self.hand_over(deployment_id, "resume"))

    def abort(self, caller: Principal, ref: str) -> Outcome:
        """Record the abort; the rollout's driver (or a job, when none holds it) rolls back."""
        from orchestrator.rollout import control

        deployment_id = self.authorized(caller, Action.ABORT, ref)
        with self.sessions.begin() as session:
            deployment = repo.get_deployment(session, deployment_id)
            message = control.request_abort(
                session, deployment, control.ControlRequest(Event.ABORT, caller.audit_name())
            )
        return Outcome(deployment_id, message, self.hand_over(deployment_id, "abort"))

    def retry(self, caller: Principal, ref: str, *, override_freeze: str | None = None) -> uuid.UUID:
        """A new deployment of a finished one's release (its frozen plan), queued; its id."""
        deployment_id = self.authorized(caller, Action.RETRY, ref)
        engine = self.rollouts.engine()
        new_id = engine.retry(
            deployment_id,
            actor=caller.audit_name(),
            user_id=caller.user_id,
            principal=caller,
            override_freeze=override_freeze,
        )
        self.rollouts.release_lease(engine, new_id)
        self.state.jobs.enqueue_rollout(new_id, reason="retry")
        return new_id

    def promote(
        self,
        caller: Principal,
        service: str,
        *,
        to: str,
        source: str | None = None,
        release: str | None = None,
        override_freeze: str | None = None,
    ) -> tuple[uuid.UUID, list[str]]:
        """What `orchestrator promote` records (`runtime.promote`, which checks the rules), queued."""
        from orchestrator.runtime import promote as promote_release

        deployment_id, lines = promote_release(
            self.rollouts.project(),
            self.rollouts.engine(),
            caller,
            service=service,
            target=to,
            source=source,
            release_ref=release,
            override_freeze=override_freeze,
            leased=False,
        )
        self.state.jobs.enqueue_rollout(deployment_id, reason="create")
        return deployment_id, lines

    def rollback(
        self,
        caller: Principal,
        service: str,
        *,
        environment: str,
        to: str | None = None,
        step_by_step: bool = False,
        override_freeze: str | None = None,
    ) -> tuple[uuid.UUID, list[str]]:
        """What `orchestrator rollback` records (`runtime.rollback`, which checks the rules), queued."""
        from orchestrator.runtime import rollback as roll_back

        deployment_id, lines = roll_back(
            self.rollouts.project(),
            self.rollouts.engine(),
            caller,
            service=service,
            environment=environment,
            release_ref=to,
            step_by_step=step_by_step,
            override_freeze=override_freeze,
            leased=False,
        )
        self.state.jobs.enqueue_rollout(deployment_id, reason="create")
        return deployment_id, lines
