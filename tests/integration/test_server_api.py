"""The REST API over real HTTP, on SQLite and Postgres: bearer tokens and the Identity rules, every error as
problem details, deployments created through the engine and handed to the jobs, reads and controls."""

from __future__ import annotations

import uuid

import httpx

from orchestrator.server.rollouts import ServerRollouts
from orchestrator.store import db
from orchestrator.store import repository as repo
from tests.integration.api_fixtures import Api, RecordingJobs, api, assert_problem
from tests.integration.test_dora_stats import HAND_CALCULATED, record_known_history

__all__ = ["api"]  # the fixture, imported for pytest


def _deploy(api: Api, who: str = "deployer", **body: object) -> dict[str, object]:
    response = api.call(who, "POST", "/deployments", json={"service": "api", "environment": "local", **body})
    assert response.status_code == 202, response.text
    return dict(response.json())


def test_reads_need_a_token_and_a_bad_one_is_401(api: Api) -> None:
    missing = assert_problem(api.call(None, "GET", "/deployments"), 401)
    assert "Authorization: Bearer" in missing["detail"] and missing["exit_code"] == 1
    assert api.call(None, "GET", "/deployments").headers["www-authenticate"].startswith("Bearer")
    unknown = "atc_" + "A" * 43
    assert (
        "unknown"
        in assert_problem(
            api.call(None, "GET", "/deployments", headers={"Authorization": f"Bearer {unknown}"}), 401
        )["detail"]
    )
    malformed = api.call(None, "GET", "/deployments", headers={"Authorization": "Bearer hunter2"})
    assert "malformed" in assert_problem(malformed, 401)["detail"]
    assert "hunter2" not in malformed.text
    expired = assert_problem(api.call("expired", "GET", "/deployments"), 401)
    assert "expired" in expired["detail"] and api.tokens["expired"] not in expired["detail"]
    revoked = assert_problem(api.call("revoked", "GET", "/deployments"), 401)
    assert "revoked" in revoked["detail"]
    basic = api.call(None, "GET", "/deployments", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert_problem(basic, 401)
    ok = api.call("viewer", "GET", "/deployments")
    assert ok.status_code == 200 and ok.json() == []


def test_a_viewer_may_not_deploy_nor_touch_a_deployment(api: Api) -> None:
    refused = assert_problem(
        api.call("viewer", "POST", "/deployments", json={"service": "api", "environment": "local"}), 403
    )
    assert "viewer@example.com (viewer) may not deploy in local" in refused["detail"]
    assert refused["exit_code"] == 1
    with db.open_sessions(api.url)() as session:
        assert repo.list_deployments(session, None) == []
    created = _deploy(api)
    for action in ("pause", "abort", "retry", "approve", "resume"):
        assert_problem(api.call("viewer", "POST", f"/deployments/{created['id']}/{action}"), 403)
    assert isinstance(api.app.state.jobs, RecordingJobs)
    assert [reason for _, reason in api.app.state.jobs.enqueued] == ["deploy"]


def test_unknown_deployment_is_404_and_a_bad_body_422(api: Api) -> None:
    missing = assert_problem(api.call("viewer", "GET", f"/deployments/{uuid.uuid4()}"), 404)
    assert "no deployment" in missing["detail"]
    assert_problem(api.call("viewer", "GET", "/deployments/abcdef12"), 404)
    assert_problem(api.call("deployer", "POST", "/deployments/abcdef12/pause"), 404)
    extra = assert_problem(
        api.call("deployer", "POST", "/deployments", json={"service": "api", "env": "local"}), 422
    )
    assert extra["exit_code"] == 2 and {e["location"] for e in extra["errors"]} >= {"body.environment"}
    unknown = assert_problem(
        api.call("deployer", "POST", "/deployments", json={"service": "nope", "environment": "local"}), 422
    )
    assert "unknown service 'nope'" in unknown["detail"] and unknown["exit_code"] == 2
    not_json = api.call(
        "deployer", "POST", "/deployments", content=b"{", headers={"content-type": "application/json"}
    )
    assert_problem(not_json, 422)
    bad_set = assert_problem(
        api.call(
            "deployer", "POST", "/deployments", json={"service": "api", "environment": "local", "set": ["x"]}
        ),
        422,
    )
    assert "x" in bad_set["detail"]


def test_deploy_is_recorded_through_the_engine_and_handed_to_the_jobs(api: Api) -> None:
    created = _deploy(api, set=["env.RELEASE=7"])
    assert created["phase"] == "Progressing" and created["actor"] == "dev@example.com"
    jobs = api.app.state.jobs
    assert isinstance(jobs, RecordingJobs)
    assert [(str(i), r) for i, r in jobs.enqueued] == [(created["id"], "deploy")]
    with db.open_sessions(api.url)() as session:
        deployment = repo.get_deployment(session, str(created["id"]))
        assert deployment.lease_owner is None  # given back: whoever takes the job takes the lease
        assert deployment.config is not None and deployment.config["overrides"] == {"env": {"RELEASE": 7}}
    again = assert_problem(
        api.call("deployer", "POST", "/deployments", json={"service": "api", "environment": "local"}), 409
    )
    assert "already being rolled out" in again["detail"] and again["exit_code"] == 1

    detail = api.call("viewer", "GET", f"/deployments/{str(created['id'])[:8]}").json()
    assert detail["id"] == created["id"]
    assert [s["state"] for s in detail["steps"]][:1] == ["current"]
    assert detail["steps"][-1]["label"].startswith("promote")
    assert [e["type"] for e in detail["events"]] == ["created", "phase"]
    assert detail["driver"] is None  # recorded, its lease given back: the job has not taken it yet
    assert detail["measurements"] == []
    listed = api.call("viewer", "GET", "/deployments", params={"service": "api"}).json()
    assert [d["id"] for d in listed] == [created["id"]]
    releases = api.call("viewer", "GET", "/releases").json()
    assert [r["id"] for r in releases] == [detail["release"]["id"]]
    history = api.call("viewer", "GET", "/services/api/history").json()
    assert [h["id"] for h in history] == [created["id"]] and history[0]["events"]
    assert_problem(api.call("viewer", "GET", "/services/nope/history"), 422)


def test_controls_act_through_the_engine(api: Api) -> None:
    created = _deploy(api)
    ref = str(created["id"])
    paused = api.call("deployer", "POST", f"/deployments/{ref}/pause")
    assert paused.status_code == 200, paused.text
    assert paused.json()["deployment"]["phase"] == "Paused"
    resumed = api.call("deployer", "POST", f"/deployments/{ref}/resume")
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["deployment"]["phase"] == "Progressing"
    refused = assert_problem(api.call("deployer", "POST", f"/deployments/{ref}/retry"), 409)
    assert refused["exit_code"] == 1
    aborted = api.call("deployer", "POST", f"/deployments/{ref}/abort")
    assert aborted.status_code == 202, aborted.text
    jobs = api.app.state.jobs
    assert isinstance(jobs, RecordingJobs)
    assert [r for _, r in jobs.enqueued] == ["deploy", "resume", "abort"]
    # The job that takes the abort over rolls back the wave it reached; no sim runs here, so it cannot, and
    # says so (a later abort finishes it).
    rollouts: ServerRollouts = api.app.state.rollouts
    assert rollouts.engine().run(uuid.UUID(ref)).value == "Failed"
    detail = api.call("viewer", "GET", f"/deployments/{ref}").json()
    assert detail["phase"] == "Failed" and "sim is not running" in detail["message"]
    events = api.call("viewer", "GET", f"/deployments/{ref}/events", params={"after": 2}).json()
    assert events[0]["seq"] == 3
    controls = [e for e in events if e["type"] == "control"]
    assert [e["actor"] for e in controls] == ["dev@example.com"] * 3  # pause, resume, abort: by the caller
    assert events[-1]["type"] in ("rollback_failed", "phase")


def test_metrics_count_requests_by_route_and_deployments_by_phase(api: Api) -> None:
    created = _deploy(api)
    api.call("viewer", "GET", f"/deployments/{created['id']}")
    api.call(None, "GET", "/deployments")
    assert api.call("deployer", "POST", f"/deployments/{created['id']}/pause").status_code == 200
    text = httpx.get(f"{api.base}/metrics").text
    requests = "orchestrator_http_requests_total"
    assert f'{requests}{{method="POST",route="/api/v1/deployments",status="202"}} 1.0' in text
    assert f'{requests}{{method="GET",route="/api/v1/deployments/{{ref}}",status="200"}} 1.0' in text
    assert f'{requests}{{method="GET",route="/api/v1/deployments",status="401"}} 1.0' in text
    assert 'orchestrator_deployments{environment="local",phase="Paused"} 1.0' in text
    assert 'orchestrator_deployments{environment="local",phase="Progressing"} 0.0' in text
    assert str(created["id"]) not in text  # ids never become labels


def test_drift_reads_as_the_drift_command(api: Api) -> None:
    assert api.call("viewer", "GET", "/drift").json() == []  # nothing committed anywhere yet
    named = api.call("viewer", "GET", "/drift", params={"service": "api", "environment": "local"})
    assert named.status_code == 200, named.text
    assert [(r["service"], r["environment"], r["state"]) for r in named.json()] == [
        ("api", "local", "not committed")
    ]
    assert_problem(api.call("viewer", "GET", "/drift", params={"environment": "nowhere"}), 422)
    assert_problem(api.call(None, "GET", "/drift"), 401)


def test_an_environment_that_requires_approval_waits_for_an_approver(api: Api) -> None:
    local = api.root / "environments" / "local.yaml"
    local.write_text(local.read_text() + "approval:\n  required: true\n")
    created = _deploy(api)
    assert created["phase"] == "AwaitingApproval"
    ref = str(created["id"])
    refused = assert_problem(api.call("deployer", "POST", f"/deployments/{ref}/approve"), 403)
    assert "may not approve in local" in refused["detail"]
    approved = api.call("admin", "POST", f"/deployments/{ref}/approve", json={"full": False})
    assert approved.status_code == 200, approved.text
    assert approved.json()["deployment"]["phase"] == "Progressing" and approved.json()["driver"] is None
    jobs = api.app.state.jobs
    assert isinstance(jobs, RecordingJobs)
    assert [r for _, r in jobs.enqueued] == ["deploy", "approve"]  # the first job returns at once: waiting
    events = api.call("viewer", "GET", f"/deployments/{ref}/events").json()
    assert ("admin@example.com", "Progressing") in [
        (e["actor"], (e["data"] or {}).get("to")) for e in events if e["type"] == "phase"
    ]


def test_promote_and_rollback_follow_the_rules(api: Api) -> None:
    body = {"to": "local-prod"}
    refused = assert_problem(api.call("viewer", "POST", "/services/api/promote", json=body), 403)
    assert "viewer@example.com (viewer) may not promote in local-prod" in refused["detail"]
    nothing = assert_problem(api.call("deployer", "POST", "/services/api/promote", json=body), 409)
    assert "local" in nothing["detail"] and nothing["exit_code"] == 1  # nothing Succeeded there yet
    assert_problem(api.call("deployer", "POST", "/services/api/promote", json={"from": "local"}), 422)
    off_path = assert_problem(api.call("deployer", "POST", "/services/api/promote", json={"to": "nope"}), 422)
    assert "unknown environment 'nope'" in off_path["detail"]
    assert_problem(api.call("viewer", "POST", "/services/api/rollback", json={"environment": "local"}), 403)
    assert_problem(api.call("deployer", "POST", "/services/api/rollback", json={"environment": "local"}), 409)
    with db.open_sessions(api.url)() as session:
        assert repo.list_deployments(session, None) == []  # every refusal left nothing behind
    created = _deploy(api)
    trails = api.call("viewer", "GET", "/services/api/releases").json()
    assert [(t["id"], t["verified_in"]) for t in trails] == [(created["release"]["id"], [])]  # type: ignore[index]
    assert_problem(api.call("viewer", "GET", "/services/nope/releases"), 422)


def test_stats_serve_what_the_stats_command_computes(api: Api) -> None:
    empty = api.call(
        "viewer", "GET", "/stats", params={"service": "api", "environment": "local", "since": "7d"}
    )
    assert empty.status_code == 200, empty.text
    figures = empty.json()
    assert figures["service"] == "api" and figures["environment"] == "local"
    assert figures["deployment_frequency"] == {"value": 0.0, "unit": "per day", "tier": "low", "samples": 0}
    assert figures["change_failure_rate"]["value"] is None
    with db.open_sessions(api.url).begin() as session:
        record_known_history(session)
    known = api.call(
        "viewer", "GET", "/stats", params={"service": "api", "environment": "local", "since": "30d"}
    )
    assert known.status_code == 200, known.text
    assert {key: known.json()[key] for key in HAND_CALCULATED} == HAND_CALCULATED
    assert_problem(api.call("viewer", "GET", "/stats", params={"since": "forever"}), 422)
    assert_problem(api.call("viewer", "GET", "/stats", params={"service": "nowhere"}), 422)
    assert_problem(api.call(None, "GET", "/stats"), 401)


def test_identity_routes_ask_review_and_handle_tokens_under_the_rules(api: Api) -> None:
    asked = api.call(None, "POST", "/access-requests", json={"email": "New@Example.com", "full_name": "New"})
    assert asked.status_code == 201 and asked.json()["email"] == "new@example.com", asked.text
    again = api.call(None, "POST", "/access-requests", json={"email": "new@example.com", "full_name": "New"})
    assert "already has a pending access request" in assert_problem(again, 422)["detail"]
    assert_problem(api.call("deployer", "GET", "/access-requests"), 403)
    ref = asked.json()["id"][:8]
    assert_problem(api.call("viewer", "POST", f"/access-requests/{ref}/approve", json={"role": "admin"}), 403)
    approved = api.call("admin", "POST", f"/access-requests/{ref}/approve", json={"role": "deployer"})
    assert approved.status_code == 200 and approved.json()["status"] == "approved", approved.text
    users = {u["email"]: u["role"] for u in api.call("admin", "GET", "/users").json()}
    assert users["new@example.com"] == "deployer"
    assert_problem(api.call("viewer", "GET", "/users"), 403)

    made = api.call("admin", "POST", "/tokens", json={"name": "ci", "user": "new@example.com"})
    assert made.status_code == 201, made.text
    secret, prefix = made.json()["secret"], made.json()["prefix"]
    fresh = httpx.get(f"{api.base}/api/v1/status", headers={"Authorization": f"Bearer {secret}"}, timeout=60)
    assert fresh.status_code == 200
    # Someone else's token: only admins list or revoke it.
    assert_problem(api.call("viewer", "GET", "/tokens", params={"user": "new@example.com"}), 403)
    assert_problem(api.call("viewer", "DELETE", f"/tokens/{made.json()['id']}"), 403)
    mine = api.call("viewer", "GET", "/tokens").json()
    assert [t["user"] for t in mine] == ["viewer@example.com"]
    revoked = api.call("admin", "DELETE", f"/tokens/{made.json()['id']}")
    assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
    assert prefix.startswith("atc_")
    gone = httpx.get(f"{api.base}/api/v1/status", headers={"Authorization": f"Bearer {secret}"}, timeout=60)
    assert gone.status_code == 401
