"""Where an environment's phase changes go, and how each kind of destination is told.

A destination is keyed `<type>:<name>` for a configured notification and `github` for the environment's
GitHub deployments; the key is half of a delivery's identity (with the event), so it must stay the same
while the configuration does. The configuration is read again at send time: a destination removed since
its delivery was recorded fails that delivery, naming it, instead of sending to where it no longer points.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import Connection

from orchestrator.config import Pipeline
from orchestrator.config.environment import Environment, GitHubConfig, NotificationConfig
from orchestrator.github import deployments as gh_deployments
from orchestrator.notify.facts import Facts, deployment_link
from orchestrator.notify.hooks import owed_hooks
from orchestrator.notify.slack import slack_message
from orchestrator.notify.triggers import ON_DRIFT, PHASE_EVENT, github_states, trigger_of
from orchestrator.notify.webhook import webhook_body
from orchestrator.outbound.send import DeliveryError, post
from orchestrator.outbound.signing import SIGNATURE_HEADER, signature
from orchestrator.rollout.drift_alerts import DRIFT_EVENT
from orchestrator.store import notifications as outbox

GITHUB = "github"


@dataclass(frozen=True)
class Wanted:
    """A delivery a phase change owes a destination."""

    destination: str
    kind: str
    trigger: str


def wanted(
    environment: Environment,
    data: dict[str, Any],
    pipeline: Pipeline | None = None,
    *,
    event_type: str = PHASE_EVENT,
) -> list[Wanted]:
    """The deliveries a phase change (a `phase` event's data) owes the environment's destinations and the
    pipeline's post-rollout and post-promotion hooks; a new drift (a `drift` event) owes `on-drift`'s."""
    found: list[Wanted] = []
    if event_type == DRIFT_EVENT:
        return [
            Wanted(key_of(n), n.type, ON_DRIFT) for n in environment.notifications if ON_DRIFT in n.triggers
        ]
    trigger = trigger_of(data)
    if trigger is not None:
        for notification in environment.notifications:
            if trigger in notification.triggers:
                found.append(Wanted(key_of(notification), notification.type, trigger))
        if pipeline is not None:
            found += [Wanted(key, kind, trigger) for key, kind in owed_hooks(pipeline, trigger)]
    if environment.github is not None and github_states(data):
        found.append(Wanted(GITHUB, GITHUB, str(data.get("to"))))
    return found


def key_of(notification: NotificationConfig) -> str:
    return f"{notification.type}:{notification.name}"


def notification_named(environment: Environment, key: str) -> NotificationConfig:
    for notification in environment.notifications:
        if key_of(notification) == key:
            return notification
    raise DeliveryError(f"{key}: no longer configured in environment {environment.name}")


def _variable(name: str, what: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise DeliveryError(f"{what}: the variable {name} is not set")
    return value


def send_notification(
    http: requests.Session, notification: NotificationConfig, facts: Facts, *, timeout: float
) -> None:
    """One attempt at a Slack or webhook notification."""
    key = key_of(notification)
    url = notification.url or _variable(str(notification.url_env), key)
    headers: dict[str, str] = {}
    if notification.type == "slack":
        body = json.dumps(slack_message(facts)).encode()
    else:
        body = webhook_body(facts)
        if notification.secret_env is not None:
            headers[SIGNATURE_HEADER] = signature(body, _variable(notification.secret_env, key))
    post(http, url, body, destination=key, headers=headers, timeout=timeout)


class GitHubSender:
    """Mirrors deployments on GitHub; keeps one github3.py client per API, token and CA."""

    def __init__(self, root: Path, base_url: str | None) -> None:
        self.root = root
        self.base_url = base_url
        self._clients: dict[tuple[str, str, str | None], Any] = {}

    def _client(self, config: GitHubConfig) -> Any:
        token = _variable(config.token_env, "github (tokenEnv)")
        ca = str((self.root / config.ca_bundle).resolve()) if config.ca_bundle else None
        key = (config.api_url, token, ca)
        if key not in self._clients:
            try:
                self._clients[key] = gh_deployments.client(
                    config.api_url, token, ca_bundle=Path(ca) if ca else None
                )
            except gh_deployments.GitHubError as exc:
                raise DeliveryError(f"github: {exc}") from None
        return self._clients[key]

    def send(
        self,
        connection_for: Callable[[], AbstractContextManager[Connection]],
        config: GitHubConfig,
        facts: Facts,
        data: dict[str, Any],
        *,
        now: Callable[[], datetime],
    ) -> None:
        """Send the statuses a phase change owes GitHub, creating the GitHub deployment first if it has
        none yet; statuses already sent (a retried delivery) are not sent again.

        `connection_for()` opens a short transaction: what GitHub accepted is recorded at once, so a
        failure after it does not make a second GitHub deployment or repeat a status."""
        gh = self._client(config)
        states = github_states(data)
        try:
            with connection_for() as connection:
                mirror = outbox.github_mirror(connection, facts.deployment_id)
            if mirror is None:
                created = gh_deployments.create_deployment(
                    gh,
                    config.repository,
                    ref=facts.git_commit,
                    environment=facts.environment,
                    description=f"{facts.service} {facts.image} ({facts.kind})",
                    payload={
                        "orchestrator_deployment": str(facts.deployment_id),
                        "service": facts.service,
                        "image": facts.image,
                        "kind": facts.kind,
                    },
                )
                with connection_for() as connection:
                    outbox.record_github_mirror(
                        connection,
                        facts.deployment_id,
                        repository=config.repository,
                        github_id=created.github_id,
                        statuses_url=created.statuses_url,
                        now=now(),
                    )
                    mirror = outbox.github_mirror(connection, facts.deployment_id)
                assert mirror is not None
            last = mirror.last_state
            remaining = states[states.index(last) + 1 :] if last in states else states
            for state in remaining:
                self._status(
                    gh,
                    config,
                    mirror.statuses_url,
                    state,
                    environment=facts.environment,
                    description=facts.summary,
                    log_url=facts.link,
                )
                with connection_for() as connection:
                    outbox.set_github_state(connection, facts.deployment_id, state, now=now())
            if "success" in states:
                with connection_for() as connection:
                    replaced = outbox.replaced_github_mirror(connection, facts.deployment_id)
                if replaced is not None:
                    self._status(
                        gh,
                        config,
                        replaced.statuses_url,
                        "inactive",
                        environment=facts.environment,
                        description=f"replaced by {facts.image} (deployment {str(facts.deployment_id)[:8]})",
                        log_url=deployment_link(replaced.deployment_id, self.base_url),
                    )
                    with connection_for() as connection:
                        outbox.set_github_state(connection, replaced.deployment_id, "inactive", now=now())
        except gh_deployments.GitHubError as exc:
            raise DeliveryError(f"github: {exc}") from None

    def _status(
        self,
        gh: Any,
        config: GitHubConfig,
        statuses_url: str,
        state: str,
        *,
        environment: str,
        description: str,
        log_url: str | None,
    ) -> None:
        gh_deployments.post_status(
            gh,
            statuses_url,
            state=state,
            environment=environment,
            description=description,
            log_url=log_url,
            environment_url=config.environment_url,
        )
