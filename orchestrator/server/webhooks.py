"""`POST /webhooks/github` and `POST /webhooks/registry`: verified, deduplicated, durably queued.

Each delivery, in this order: the body is read up to 1 MiB (413 past it, `body.py`); its signature is
checked against the raw bytes (401 and nothing recorded when it is wrong or missing); it is parsed (400 for
JSON that is not an object); then a transaction records the delivery under its id — a redelivery finds
that row and is answered 200 with nothing queued — with the rollout requests it asks for and their jobs
(with the other deliveries waiting then: `deliveries.py`).
What the delivery asks for is decided from the checkout's configuration (a push here; a release and a
workflow run in `github_events.py`, which also ask git and the store): an event for another repository,
branch or an unknown service is recorded as ignored and answered 202 with the reason, which is logged.

Logs name the delivery, event, repository and outcome; never a header, a signature or a secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError

from orchestrator.logs import get_logger
from orchestrator.server import pull_requests, signatures
from orchestrator.server.api.schemas import Problem as ProblemBody
from orchestrator.server.body import read_limited
from orchestrator.server.catalog import Catalog, CatalogCache
from orchestrator.server.changes import changed_paths, services_changed
from orchestrator.server.decision import Decision, Wanted, first_environments
from orchestrator.server.deliveries import DUPLICATE, Delivery, DeliveryRecorder
from orchestrator.server.github_events import RELEASE, WORKFLOW_RUN, decide_release, decide_workflow_run
from orchestrator.server.problems import Problem
from orchestrator.server.webhook_settings import GITHUB_REPOSITORY_ENV, WebhookSettings
from orchestrator.store.models import WebhookDelivery

log = get_logger(__name__)
router = APIRouter(tags=["webhooks"])

ZERO_SHA = "0" * 40
REGISTRY_SIGNATURE_HEADER = "x-registry-signature-256"
REGISTRY_DELIVERY_HEADER = "x-registry-delivery"
MANIFEST_TYPES = ("manifest", "image.index")  # distribution events for pushed manifests (not blobs)


# --- the routes ---

# What the routes answer besides 202, documented so the OpenAPI document (and schemathesis) knows them.
_ANSWERS: dict[int | str, dict[str, object]] = {
    200: {"description": "a redelivery (duplicate) or a ping: nothing queued"},
    **{
        status: {"model": ProblemBody, "content": {"application/problem+json": {}}, "description": why}
        for status, why in (
            (400, "malformed JSON, or a delivery id missing or too long"),
            (401, "a bad or missing signature: nothing stored or queued"),
            (413, "a body over 1 MiB (read no further)"),
            (503, "no webhook secret is configured on this server"),
        )
    },
}


@router.post(
    "/webhooks/github",
    status_code=202,
    summary="GitHub webhook (push, release, workflow_run, ping; pull_request of pull-request mode)",
    responses=_ANSWERS,
)
async def github_webhook(request: Request) -> JSONResponse:
    return await _counted(request, "github", _github_delivery)


async def _github_delivery(request: Request) -> JSONResponse:
    settings = _settings(request)
    body = await read_limited(request)
    secret = settings.github_secret
    if secret is None:
        raise Problem(503, "Service Unavailable", "no GitHub webhook secret is configured on this server")
    if not signatures.verify(secret, body, request.headers.get("x-hub-signature-256")):
        log.info("webhook_refused", source="github", reason="bad or missing signature")
        raise Problem(401, "Unauthorized", "the X-Hub-Signature-256 signature is missing or does not match")
    payload = _parse(body)
    delivery = request.headers.get("x-github-delivery") or ""
    if not delivery or len(delivery) > 200:
        raise Problem(400, "Bad Request", "X-GitHub-Delivery is missing or longer than 200 characters")
    event = request.headers.get("x-github-event") or ""
    if event == "pull_request":
        return await run_in_threadpool(_record_pull_request, request, delivery, payload)
    if event in (RELEASE, WORKFLOW_RUN):
        # On a thread: a release or a workflow run asks git and the store what it means.
        decision = await run_in_threadpool(_decide_github, request, settings, event, payload)
    else:  # a push or a ping: the catalog only (re-read only when the pipelines changed), decided here
        decision = _decide_github(request, settings, event, payload)
    return await _record(request, "github", delivery, decision)


@router.post(
    "/webhooks/registry",
    status_code=202,
    summary="Registry notification (distribution, or generic)",
    responses=_ANSWERS,
)
async def registry_webhook(request: Request) -> JSONResponse:
    return await _counted(request, "registry", _registry_delivery)


async def _registry_delivery(request: Request) -> JSONResponse:
    settings = _settings(request)
    body = await read_limited(request)
    secret = settings.registry_secret
    if secret is None:
        raise Problem(503, "Service Unavailable", "no registry webhook secret is configured on this server")
    if not _registry_verified(secret, body, request):
        log.info("webhook_refused", source="registry", reason="bad or missing signature")
        raise Problem(
            401,
            "Unauthorized",
            "the X-Registry-Signature-256 signature (or the Authorization bearer secret) is missing or wrong",
        )
    payload = _parse(body)
    # Docker distribution sends a static header set, no delivery id: the body's hash names a delivery, so a
    # retried notification (the same bytes) is recognised.
    delivery = request.headers.get(REGISTRY_DELIVERY_HEADER) or "sha256:" + hashlib.sha256(body).hexdigest()
    if len(delivery) > 200:
        raise Problem(400, "Bad Request", f"{REGISTRY_DELIVERY_HEADER} is longer than 200 characters")
    decision = _decide_registry(request, payload)
    return await _record(request, "registry", delivery, decision)


# What /metrics calls a delivery refused with a problem, by its status (`orchestrator_webhook_deliveries`).
_REFUSALS = {400: "malformed", 401: "unauthorized", 413: "too_large", 503: "unconfigured"}


async def _counted(
    request: Request, source: str, answer: Callable[[Request], Awaitable[JSONResponse]]
) -> JSONResponse:
    """Answer the delivery and count it by outcome: the one recorded (`_record` counts those), or the
    refusal's, or `error` for anything unexpected (answered 500 by the problem handler)."""
    try:
        return await answer(request)
    except Problem as problem:
        _count(request, source, _REFUSALS.get(problem.status, "error"))
        raise
    except Exception:
        _count(request, source, "error")
        raise


def _count(request: Request, source: str, outcome: str) -> None:
    request.app.state.metrics.webhooks.labels(source=source, outcome=outcome).inc()


# --- checks ---


def _settings(request: Request) -> WebhookSettings:
    settings: WebhookSettings = request.app.state.webhooks
    return settings


def _registry_verified(secret: bytes, body: bytes, request: Request) -> bool:
    signature = request.headers.get(REGISTRY_SIGNATURE_HEADER)
    if signature is not None:
        return signatures.verify(secret, body, signature)
    # Docker distribution can only send configured headers: `Authorization: Bearer <secret>`.
    authorization = request.headers.get("authorization") or ""
    scheme, _, token = authorization.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), secret)


def _parse(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Problem(400, "Bad Request", f"the body is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise Problem(400, "Bad Request", "the body is JSON but not an object")
    return payload


# --- what a delivery asks for ---


def _root(request: Request) -> Path:
    root: Path = request.app.state.settings.root
    return root


def _catalog(request: Request) -> Catalog:
    cache: CatalogCache | None = getattr(request.app.state, "catalog", None)
    if cache is None:
        cache = request.app.state.catalog = CatalogCache(request.app.state.settings.root)
    return cache.get()


def _decide_github(
    request: Request, settings: WebhookSettings, event: str, payload: dict[str, Any]
) -> Decision:
    repository = _text(payload.get("repository"), "full_name")
    decision = Decision(event=event or "-", repository=repository)
    if event == "ping":
        decision.ping = True
        return decision
    if settings.github_repository is None:
        decision.reasons.append(f"no repository is configured ({GITHUB_REPOSITORY_ENV}); nothing is deployed")
        return decision
    if repository is None or repository.lower() != settings.github_repository.lower():
        decision.reasons.append(f"repository {repository!r} is not {settings.github_repository!r}")
        return decision
    if event == RELEASE:
        decide_release(_root(request), request.app.state.sessions, _catalog(request), payload, decision)
        return decision
    if event == WORKFLOW_RUN:
        decide_workflow_run(
            _root(request),
            request.app.state.sessions,
            _catalog(request),
            payload,
            decision,
            repository=settings.github_repository,
        )
        return decision
    if event != "push":
        handled = "push, release, workflow_run, pull_request and ping are"
        decision.reasons.append(f"event {event!r} is not handled ({handled})")
        return decision
    default_branch = _text(payload.get("repository"), "default_branch")
    ref = payload.get("ref")
    if not default_branch or ref != f"refs/heads/{default_branch}":
        decision.reasons.append(f"{ref!r} is not the default branch ({default_branch!r})")
        return decision
    after = payload.get("after")
    if not isinstance(after, str) or len(after) != 40 or after == ZERO_SHA:
        decision.reasons.append("the push deletes the branch or names no commit")
        return decision
    catalog = _catalog(request)
    paths, incomplete = changed_paths(payload)
    known = catalog.services
    services = services_changed(paths, known, everything=incomplete)
    unknown = sorted(
        {p.split("/")[1] for p in paths if p.startswith("services/") and p.count("/") >= 2} - set(known)
    )
    for name in unknown:
        decision.reasons.append(f"services/{name} changed but no pipeline names service {name!r}")
    if not services and not unknown:
        decision.reasons.append("no service's files changed")
    for service in services:
        for environment in first_environments(catalog, service, decision):
            decision.wanted.append(Wanted(service, environment, git_commit=after))
    return decision


def _decide_registry(request: Request, payload: dict[str, Any]) -> Decision:
    pushed: list[tuple[str, str, str | None]] = []  # (repository, digest, host)
    if isinstance(payload.get("events"), list):
        for item in payload["events"]:
            target = item.get("target") if isinstance(item, dict) else None
            if not isinstance(target, dict) or item.get("action") != "push":
                continue
            media_type = str(target.get("mediaType") or "")
            if media_type and not any(kind in media_type for kind in MANIFEST_TYPES):
                continue
            repository, digest = target.get("repository"), target.get("digest")
            if isinstance(repository, str) and isinstance(digest, str):
                pushed.append((repository, digest, _text(item.get("request"), "host")))
    else:
        repository, digest = payload.get("repository"), payload.get("digest")
        if not isinstance(repository, str) or not isinstance(digest, str):
            raise Problem(
                400, "Bad Request", "a registry notification needs `repository` and `digest` (or `events`)"
            )
        pushed.append((repository, digest, None))
    decision = Decision(event="registry push", repository=", ".join(sorted({p[0] for p in pushed})) or None)
    if not pushed:
        decision.reasons.append("no pushed manifest in the notification")
        return decision
    catalog = _catalog(request)
    for repository, digest, host in pushed:
        if not digest.startswith("sha256:") or len(digest) != 71:
            decision.reasons.append(f"{repository}: {digest!r} is not a sha256 digest")
            continue
        service = _service_built_from(catalog, repository, decision)
        if service is None:
            continue
        where = f"{host}/{repository}" if host and not repository.startswith(f"{host}/") else repository
        for environment in first_environments(catalog, service, decision):
            decision.wanted.append(Wanted(service, environment, digest=digest, built_repository=where))
    return decision


def _service_built_from(catalog: Catalog, repository: str, decision: Decision) -> str | None:
    """The service whose pipeline builds `repository` (the registry's path, with or without its host)."""
    for service, built in sorted(catalog.built_from.items()):
        if repository == built or repository.endswith(f"/{built}"):
            return service
    decision.reasons.append(f"no service is built from repository {repository!r}")
    return None


def _text(mapping: object, key: str) -> str | None:
    value = mapping.get(key) if isinstance(mapping, dict) else None
    return value if isinstance(value, str) else None


# --- recording ---


async def _record(request: Request, source: str, delivery: str, decision: Decision) -> JSONResponse:
    """Record the delivery (committed with its requests and jobs before anything is answered: the
    process's writers batch it with the others waiting, `deliveries.py`)."""
    recorder: DeliveryRecorder = request.app.state.deliveries
    recorded = await recorder.record(Delivery(source, delivery, decision))
    if recorded.outcome == DUPLICATE:
        log.info("webhook_duplicate", source=source, delivery=delivery, webhook_event=decision.event)
        _count(request, source, "duplicate")
        return JSONResponse({"delivery": delivery, "outcome": "duplicate", "requests": []}, status_code=200)
    queued = [
        {"id": i, "service": w.service, "environment": w.environment}
        for i, w in zip(recorded.requests, decision.wanted, strict=True)
    ]
    log.info(
        "webhook_received",
        source=source,
        delivery=delivery,
        webhook_event=decision.event,
        repository=decision.repository,
        outcome=recorded.outcome,
        reason=decision.reason,
        requests=recorded.requests,
    )
    _count(request, source, recorded.outcome)
    answer = {
        "delivery": delivery,
        "outcome": recorded.outcome,
        "reason": decision.reason,
        "requests": queued,
    }
    return JSONResponse(answer, status_code=200 if decision.ping else 202)


def _record_pull_request(request: Request, delivery: str, payload: dict[str, Any]) -> JSONResponse:
    """A pull request of pull-request mode merged (its deployment rolls out) or closed (it is cancelled)."""
    event = pull_requests.PullRequestEvent.of(payload)
    sessions = request.app.state.sessions
    try:
        with sessions.begin() as session:
            settled = pull_requests.settle(session, request.app.state.jobs, delivery, event)
    except IntegrityError:
        if not _known_delivery(sessions, "github", delivery):
            raise
        log.info("webhook_duplicate", source="github", delivery=delivery, webhook_event="pull_request")
        _count(request, "github", "duplicate")
        return JSONResponse({"delivery": delivery, "outcome": "duplicate", "requests": []}, status_code=200)
    assert settled.outcome is not None
    _count(request, "github", settled.outcome.value)
    log.info(
        "webhook_received",
        source="github",
        delivery=delivery,
        webhook_event="pull_request",
        repository=event.repository,
        outcome=settled.outcome.value,
        reason=settled.reason,
    )
    answer: dict[str, Any] = {
        "delivery": delivery,
        "outcome": settled.outcome.value,
        "reason": settled.reason,
        "requests": [],
        "deployment": str(settled.deployment) if settled.deployment else None,
    }
    return JSONResponse(answer, status_code=202)


def _known_delivery(sessions: Any, source: str, delivery: str) -> bool:
    from sqlalchemy import select

    with sessions() as session:
        found = session.scalar(
            select(WebhookDelivery.id).where(
                WebhookDelivery.source == source, WebhookDelivery.delivery_id == delivery
            )
        )
    return found is not None
