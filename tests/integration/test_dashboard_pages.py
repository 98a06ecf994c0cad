"""The dashboard's pages over real HTTP on SQLite and Postgres, without a browser: CSRF on every POST
(refused with nothing done), the rules on every action (403 whatever the page showed), the search filtered
in the database, the promotion code's own refusals shown as pages, the deployment page's controls acting
as the commands do on rollouts driven against `orchestrator sim up`, the judge's verdicts, the overview's
filters, and the session cookie's Secure flag over TLS."""

from __future__ import annotations

import re
import ssl
import uuid
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import trustme

from orchestrator.analysis import AnalysisPhase, Measurement
from orchestrator.analysis import judge as kayenta
from orchestrator.config.pipeline import JudgeProvider
from orchestrator.identity import passwords
from orchestrator.server.app import create_app
from orchestrator.server.dashboard import csrf, session
from orchestrator.server.rollouts import ServerRollouts
from orchestrator.server.settings import ServerSettings
from orchestrator.store import db
from orchestrator.store import identity as store
from orchestrator.store import repository as repo
from tests.e2e.test_drift_cli import kubectl
from tests.integration.api_fixtures import Api, RecordingJobs, api
from tests.server_fixtures import serving

__all__ = ["api"]  # the fixture, imported for pytest


def _browser(api: Api, who: str | None) -> httpx.Client:
    """A client holding `who`'s session cookie (a session is an API token), not following redirects."""
    cookies = {session.COOKIE: api.tokens[who]} if who else {}
    return httpx.Client(base_url=api.base, cookies=cookies, timeout=60)


def _token(api: Api, who: str) -> dict[str, str]:
    return {csrf.FIELD: csrf.for_session(api.tokens[who])}


def _form_token(client: httpx.Client) -> str:
    """The request-access form's token (its cookie is set on the client by the same answer)."""
    form = client.get("/request-access").text
    return form.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]


def _pending(api: Api) -> list[store.AccessRequest]:
    with db.open_sessions(api.url)() as opened:
        return store.list_access_requests(opened, "pending")


def test_access_pages_check_csrf_and_the_rules(api: Api) -> None:
    with _browser(api, None) as anyone:
        fields = {"email": "new@example.com", "full_name": "New Comer", "organization": "", "reason": ""}
        forged = anyone.post("/request-access", data={**fields, csrf.FIELD: "x" * 43})
        assert forged.status_code == 403 and "the form expired" in forged.text and _pending(api) == []
        sent = anyone.post("/request-access", data={**fields, csrf.FIELD: _form_token(anyone)})
        assert sent.status_code == 201 and "is waiting for an administrator" in sent.text
        empty = anyone.post(
            "/request-access", data={**fields, "full_name": " ", csrf.FIELD: _form_token(anyone)}
        )
        assert (
            empty.status_code == 422
            and "a name is needed" in empty.text
            and 'value="new@example.com"' in empty.text
        )
        twice = anyone.post("/request-access", data={**fields, csrf.FIELD: _form_token(anyone)})
        assert twice.status_code == 422 and "already has a pending access request" in twice.text
    [pending] = _pending(api)
    approve = f"/access/requests/{pending.id}/approve"

    with _browser(api, "viewer") as viewer:
        page = viewer.get("/access")
        assert page.status_code == 200 and "Your API tokens" in page.text
        assert "Access requests waiting" not in page.text and "Create user" not in page.text
        refused = viewer.post(approve, data={"role": "admin", **_token(api, "viewer")})
        assert refused.status_code == 403 and "may not review access requests" in refused.text
        made = viewer.post("/access/tokens", data={"name": "mine", "expires": "1d", **_token(api, "viewer")})
        assert made.status_code == 201 and made.headers["cache-control"] == "no-store"
        secret = made.text.split("data-secret", 1)[0].rsplit('value="', 1)[1].split('"', 1)[0]
        assert secret.startswith("atc_")
        others = viewer.post(
            "/access/tokens", data={"name": "x", "user": "admin@example.com", **_token(api, "viewer")}
        )
        assert others.status_code == 403
    with httpx.Client(base_url=f"{api.base}/api/v1", headers={"Authorization": f"Bearer {secret}"}) as as_new:
        assert as_new.get("/status").status_code == 200

    with _browser(api, "admin") as admin:
        assert "Access requests waiting (1)" in admin.get("/access").text
        assert admin.post(approve, data={"role": "deployer"}).status_code == 403  # no CSRF token
        assert len(_pending(api)) == 1
        done = admin.post(approve, data={"role": "deployer", **_token(api, "admin")})
        assert done.status_code == 303 and done.headers["location"].startswith("/access?done=approved")
        assert "new@example.com approved" in admin.get(done.headers["location"]).text
    with db.open_sessions(api.url)() as opened:
        assert store.get_user(opened, "new@example.com").role == "deployer"
    assert _pending(api) == []


def _user(api: Api, email: str) -> tuple[str, str]:
    with db.open_sessions(api.url)() as opened:
        user = store.get_user(opened, email)
        return user.role, user.status


def test_an_admin_changes_roles_and_disables_users_from_the_access_page(api: Api) -> None:
    role, status = "/access/users/dev%40example.com/role", "/access/users/dev%40example.com/status"
    with _browser(api, "viewer") as viewer:
        assert viewer.post(role, data={"role": "admin", **_token(api, "viewer")}).status_code == 403
        assert "Change role of" not in viewer.get("/access").text
    with _browser(api, "admin") as admin:
        page = admin.get("/access").text
        assert 'action="/access/users/dev%40example.com/role"' in page and "Disable dev@example.com" in page
        assert admin.post(role, data={"role": "viewer"}).status_code == 403  # no CSRF token
        assert _user(api, "dev@example.com") == ("deployer", "active")
        done = admin.post(role, data={"role": "viewer", **_token(api, "admin")})
        assert (
            done.status_code == 303
            and "Role of dev@example.com changed" in admin.get(done.headers["location"]).text
        )
        assert _user(api, "dev@example.com") == ("viewer", "active")
        off = admin.post(status, data={"status": "disabled", **_token(api, "admin")})
        assert off.status_code == 303 and _user(api, "dev@example.com") == ("viewer", "disabled")
        assert "Enable dev@example.com" in admin.get("/access").text
        # A disabled user's token stops at once.
        assert api.call("deployer", "GET", "/status").status_code == 401
        on = admin.post(status, data={"status": "active", **_token(api, "admin")})
        assert on.status_code == 303 and _user(api, "dev@example.com") == ("viewer", "active")
        # The last active admin stays one, with the rule's message on a page.
        last = admin.post(
            "/access/users/admin%40example.com/role", data={"role": "viewer", **_token(api, "admin")}
        )
        assert last.status_code in (409, 422) and "admin" in last.text
        assert _user(api, "admin@example.com") == ("admin", "active")


def test_history_searches_in_the_database_and_promotion_refusals_are_the_promotion_codes(api: Api) -> None:
    made = api.call("deployer", "POST", "/deployments", json={"service": "api", "environment": "local"})
    assert made.status_code == 202, made.text
    deployment = made.json()["id"]
    phase = made.json()["phase"]  # recorded, never driven: the test's jobs keep what they are given
    today = datetime.now(UTC).date()
    with _browser(api, "viewer") as viewer:

        def found(**query: str) -> bool:
            answer = viewer.get("/history", params=query)
            assert answer.status_code == 200, answer.text
            return f'data-deployment="{deployment}"' in answer.text

        assert found()
        assert found(service="api", environment="local", user="DEV@example.com", outcome=phase)
        assert found(**{"from": today.isoformat(), "to": today.isoformat()})
        assert not found(user="admin@example.com")
        assert not found(outcome="Succeeded")
        assert not found(**{"from": (today + timedelta(days=1)).isoformat()})
        assert not found(environment="local-prod")
        backwards = viewer.get("/history", params={"from": "2026-05-02", "to": "2026-05-01"})
        assert backwards.status_code == 422 and "the dates run backwards" in backwards.text
        unknown = viewer.get("/history", params={"service": "nope"})
        assert unknown.status_code == 422 and "nope" in unknown.text

        stages = viewer.get("/promotion")
        assert stages.status_code == 200 and 'data-environment="local-prod"' in stages.text
        assert "Promote api" not in stages.text
        refused = viewer.post("/promotion/api/promote", data={"to": "local-prod", **_token(api, "viewer")})
        assert refused.status_code == 403 and "viewers only read" in refused.text
    with _browser(api, "deployer") as deployer:
        # local's newest deployment has not Succeeded: the promotion code says so, nothing is recorded.
        early = deployer.post("/promotion/api/promote", data={"to": "local-prod", **_token(api, "deployer")})
        assert early.status_code == 409, early.text
        assert f"is {phase}, not Succeeded" in early.text
        first = deployer.post("/promotion/api/promote", data={"to": "local", **_token(api, "deployer")})
        assert first.status_code == 422 and "is the first environment of" in first.text
        forged = deployer.post("/promotion/api/promote", data={"to": "local-prod"})
        assert forged.status_code == 403 and "CSRF token" in forged.text
    assert [d["id"] for d in api.call("viewer", "GET", "/deployments").json()] == [deployment]


# --- the deployment page's controls, on rollouts driven against `orchestrator sim up` ---------------------

# A canary that waits at an indefinite pause (until approved): a deployment stays Paused there, where
# approve, approve fully and abort are all allowed, until a control moves it.
HELD = """strategy:
  canary:
    steps:
      - setWeight: 20
      - pause: {}
      - setWeight: 60
"""
IMAGE = "registry.addtocloud.local/addtocloud/api"
# Each button on a deployment page: its form's confirmation question (if it has one) and its label.
_CONTROL = re.compile(
    r'<form method="post" action="/deployments/[^"/]+/\w+"(?: data-confirm="([^"]*)")?>.*?'
    r"<button[^>]*>([^<]+)</button>",
    re.S,
)


def _hold_at_a_pause(api: Api) -> None:
    """The api's strategy becomes HELD (the server reads the checkout afresh for each request)."""
    path = api.root / "pipelines" / "api.yaml"
    path.write_text(re.sub(r"strategy:\n(?:(?:  |    ).*\n)+", HELD, path.read_text()))


def _deploy(api: Api, image: str, service: str = "api") -> uuid.UUID:
    body = {"service": service, "environment": "local", "image": image}
    made = api.call("deployer", "POST", "/deployments", json=body)
    assert made.status_code == 202, made.text
    return uuid.UUID(made.json()["id"])


def _drive(api: Api, deployment: uuid.UUID) -> str:
    """Drive the deployment as the job queued for it would (the test's jobs only record what they are
    given), until it finishes or waits for someone; the phase it stopped in."""
    rollouts: ServerRollouts = api.app.state.rollouts
    return rollouts.engine().run(deployment).value


def _controls(page: str) -> dict[str, str]:
    """The deployment page's buttons, each with the question its form asks before it is sent; every one
    must ask."""
    found = {label: confirm for confirm, label in _CONTROL.findall(page)}
    assert all(found.values()), f"a control without data-confirm: {found}"
    return found


Recorded = tuple[str, list[tuple[str, str | None, str | None]]]


def _recorded(api: Api, deployment: uuid.UUID) -> Recorded:
    """The deployment's phase and its events (type, actor, the control event asked) as the store holds
    them."""
    with api.app.state.sessions() as opened:
        events = repo.events_for(opened, deployment)
        trail = [(e.type, e.actor, (e.data or {}).get("event")) for e in events]
        return repo.get_deployment(opened, deployment).phase, trail


def _queued(api: Api) -> list[tuple[uuid.UUID, str]]:
    jobs = api.app.state.jobs
    assert isinstance(jobs, RecordingJobs)
    return jobs.enqueued


def test_approve_fully_and_roll_back_from_the_deployment_page_act_as_the_commands_do(
    api: Api, running_sim: dict[str, str]
) -> None:
    _hold_at_a_pause(api)
    first = _deploy(api, f"{IMAGE}:v1")
    assert _drive(api, first) == "Succeeded"  # nothing ran before it: no canary, so no pause
    second = _deploy(api, f"{IMAGE}:v2")
    assert _drive(api, second) == "Paused"
    page = f"/deployments/{second}"
    paused = _recorded(api, second)

    with _browser(api, "viewer") as viewer:
        assert _controls(viewer.get(page).text) == {}
        refused = viewer.post(f"{page}/approve", data={"full": "1", **_token(api, "viewer")})
        assert refused.status_code == 403 and "may not approve in local" in refused.text
    with _browser(api, "deployer") as deployer:
        assert set(_controls(deployer.get(page).text)) == {"Abort"}  # local's approvers: admin only
    with _browser(api, "admin") as admin:
        shown = _controls(admin.get(page).text)
        assert set(shown) == {"Approve", "Approve fully", "Abort"}
        assert shown["Approve fully"].startswith("Approve fully: skip every remaining step of api in local")
        forged = admin.post(f"{page}/approve", data={"full": "1"})
        assert forged.status_code == 403 and "CSRF token" in forged.text
        assert _recorded(api, second) == paused  # neither the viewer nor the forgery changed anything
        done = admin.post(f"{page}/approve", data={"full": "1", **_token(api, "admin")})
        assert done.status_code == 303 and done.headers["location"] == page
    # What `approve --full` records: the full promotion as an override, the phase it moves to and the
    # control, all by the approver; the job that takes it over skips every step left.
    phase, trail = _recorded(api, second)
    assert phase == "Progressing" and trail[len(paused[1]) :] == [
        ("override", "admin@example.com", None),
        ("phase", "admin@example.com", "approve_full"),
        ("control", "admin@example.com", "approve_full"),
    ]
    assert _queued(api)[-1] == (second, "approve")
    assert _drive(api, second) == "Succeeded"
    with api.app.state.sessions() as opened:
        after = repo.events_for(opened, second, after_seq=len(paused[1]))
        skipped = [e.message for e in after if e.type == "step_completed" and (e.data or {}).get("skipped")]
    for wave in ("wave 1 (aws)", "wave 2 (azure, gcp)"):
        assert f"skipped (approve --full): setWeight 60 · {wave}" in skipped, skipped

    with _browser(api, "viewer") as viewer:
        assert _controls(viewer.get(page).text) == {}
        refused = viewer.post(f"{page}/rollback", data=_token(api, "viewer"))
        assert refused.status_code == 403 and "may not rollback in local" in refused.text
    with _browser(api, "deployer") as deployer:
        shown = _controls(deployer.get(page).text)
        assert set(shown) == {"Roll back"}
        assert shown["Roll back"].startswith("Roll local back: undo its last successful deployment of api")
        assert deployer.post(f"{page}/rollback").status_code == 403  # no CSRF token
        forged = deployer.post(f"{page}/rollback", data={csrf.FIELD: csrf.for_session(api.tokens["viewer"])})
        assert forged.status_code == 403 and "CSRF token" in forged.text  # another session's token
        with api.app.state.sessions() as opened:
            assert {d.id for d in repo.list_deployments(opened, None)} == {first, second}
        done = deployer.post(f"{page}/rollback", data=_token(api, "deployer"))
        assert done.status_code == 303, done.text
    # What `rollback api --env local` records: a deployment of kind rollback undoing the second, putting
    # the first's release back, queued for a job.
    with api.app.state.sessions() as opened:
        [undo] = [d for d in repo.list_deployments(opened, None) if d.id not in (first, second)]
        assert (undo.kind, undo.undoes_id, undo.actor) == ("rollback", second, "dev@example.com")
        assert undo.release_id == repo.get_deployment(opened, first).release_id
    assert done.headers["location"] == f"/deployments/{undo.id}"
    assert _queued(api)[-1] == (undo.id, "create")
    assert _drive(api, undo.id) == "Succeeded"


def test_abort_from_the_deployment_page_rolls_back_as_the_abort_command_does(
    api: Api, running_sim: dict[str, str]
) -> None:
    _hold_at_a_pause(api)
    assert _drive(api, _deploy(api, f"{IMAGE}:v1")) == "Succeeded"
    second = _deploy(api, f"{IMAGE}:v2")
    assert _drive(api, second) == "Paused"
    page = f"/deployments/{second}"
    paused = _recorded(api, second)

    with _browser(api, "viewer") as viewer:
        refused = viewer.post(f"{page}/abort", data=_token(api, "viewer"))
        assert refused.status_code == 403 and "may not abort in local" in refused.text
    with _browser(api, "deployer") as deployer:
        shown = _controls(deployer.get(page).text)
        assert shown["Abort"].startswith("Abort api in local and roll every touched cluster back")
        forged = deployer.post(f"{page}/abort", data={})
        assert forged.status_code == 403 and "CSRF token" in forged.text
        assert _recorded(api, second) == paused
        done = deployer.post(f"{page}/abort", data=_token(api, "deployer"))
        assert done.status_code == 303 and done.headers["location"] == page
    # What `abort` records: the request, by the caller; the job that takes it over rolls back.
    phase, trail = _recorded(api, second)
    assert phase == "Paused" and trail[len(paused[1]) :] == [("control", "dev@example.com", "abort")]
    assert _queued(api)[-1] == (second, "abort")
    assert _drive(api, second) == "Aborted"
    with api.app.state.sessions() as opened:
        clusters = repo.get_deployment(opened, second).clusters
        assert [(c.cluster, c.canary_weight) for c in clusters] == [("aws", 0), ("azure", 0), ("gcp", 0)]
    with _browser(api, "deployer") as deployer:
        assert set(_controls(deployer.get(page).text)) == {"Retry"}  # nothing left to abort


def test_the_deployment_page_shows_the_judges_verdict_and_score(api: Api) -> None:
    deployment = _deploy(api, f"{IMAGE}:v1")  # recorded, never driven: the verdict is stored below
    page = f"/deployments/{deployment}"
    with _browser(api, "viewer") as viewer:
        assert "Judge's verdicts" not in viewer.get(page).text  # no verdict, no section
    # A judgement as the judge makes one (Kayenta's classifier and scorer): the canary's p99 latency far
    # above stable's, its error rate the same; one metric of two passes, a score of 50.
    slow, fast = [500.0 + i for i in range(20)], [20.0 + i for i in range(20)]
    verdicts = [
        kayenta.classify("p99-latency", slow, fast, "increase"),
        kayenta.classify("error-rate", fast, fast, "increase"),
    ]
    verdict, score, message = kayenta.judge(verdicts, JudgeProvider(query="unused"))
    assert (verdict, score) == (AnalysisPhase.FAILED, 50.0)
    now = datetime.now(UTC)
    measured = Measurement(
        metric="latency-judge",
        phase=verdict,
        value=score,
        query="p99 ; errors",
        message=message,
        started_at=now,
        finished_at=now,
        source=kayenta.SOURCE,
        details={"metrics": [asdict(v) for v in verdicts]},
    )
    with api.app.state.sessions.begin() as opened:  # as the engine stores a gate's measurement
        found = repo.get_deployment(opened, deployment)
        data = measured.to_dict()
        repo.append_event(
            opened, found, "measurement", "latency-judge = 50 -> Failed", step=3, cluster="aws", data=data
        )
    with _browser(api, "viewer") as viewer:
        for answer in (viewer.get(page), viewer.get(f"{page}/panel", params={"part": "trail"})):
            assert answer.status_code == 200, answer.text
            assert "Judge's verdicts" in answer.text
            assert "<td>3</td><td>aws</td><td>Failed</td><td>50.0</td>" in answer.text
            assert "p99-latency: High; error-rate: Pass" in answer.text
            assert "score 50 (fail; pass &gt;= 95, marginal &gt;= 75): p99-latency High" in answer.text


# --- the session cookie over TLS and over plain HTTP -------------------------------------------------------


def _sign_in(client: httpx.Client, email: str, password: str) -> tuple[set[str], set[str]]:
    """Sign in through the login form; the attributes of the form's cookie and of the session cookie."""
    form = client.get("/login")
    assert form.status_code == 200, form.text
    token = form.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    answer = client.post("/login", data={"email": email, "password": password, csrf.FIELD: token})
    assert answer.status_code == 303, answer.text

    def attributes(response: httpx.Response, name: str) -> set[str]:
        [cookie] = [c for c in response.headers.get_list("set-cookie") if c.startswith(f"{name}=")]
        return {part.strip().lower() for part in cookie.split(";")[1:]}

    return attributes(form, csrf.LOGIN_COOKIE), attributes(answer, session.COOKIE)


def test_the_session_cookie_is_secure_over_tls_and_not_over_http(api: Api, tmp_path: Path) -> None:
    password = "correct horse battery"
    with api.app.state.sessions.begin() as opened:
        user = store.get_user(opened, "viewer@example.com")
        store.set_password_hash(opened, user, passwords.hash_password(password))
    # A private CA's certificate for 127.0.0.1, served as `serve --tls-cert --tls-key` serves it; the client
    # trusts that CA alone (REQUESTS_CA_BUNDLE and SSL_CERT_FILE name the system's, which does not know it).
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    cert, key = tmp_path / "server.pem", tmp_path / "server.key"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    trusted = ssl.create_default_context()
    ca.configure_trust(trusted)
    over_tls = create_app(ServerSettings(root=api.root, state_dir=tmp_path / "state", database_url=api.url))
    over_tls.state.jobs.close()
    over_tls.state.jobs = RecordingJobs()
    with serving(over_tls, tls=(cert, key)) as base, httpx.Client(base_url=base, verify=trusted) as client:
        assert base.startswith("https://")
        form, signed_in = _sign_in(client, "viewer@example.com", password)
        assert "secure" in form and "secure" in signed_in
        assert {"httponly", "samesite=lax", "path=/"} <= signed_in
    with httpx.Client(base_url=api.base) as plain:
        assert api.base.startswith("http://")
        form, signed_in = _sign_in(plain, "viewer@example.com", password)
        assert "secure" not in form and "secure" not in signed_in
        assert {"httponly", "samesite=lax", "path=/"} <= signed_in


# --- the overview ---------------------------------------------------------------------------------------

DIGEST = "sha256:" + "0123456789abcdef" * 4


def _grid(page: str) -> tuple[list[str], list[str]]:
    """The overview grid's rows (services) and columns (environments), in order."""
    rows = re.findall(r'<th scope="row">([^<]+)</th>', page)
    columns = re.findall(r'<th scope="col">([^<]+)</th>', page)
    return rows, columns[1:]  # the first column heads the services


def test_the_overview_filters_narrow_the_grid_and_a_cell_shows_its_release_and_drift(
    api: Api, running_sim: dict[str, str]
) -> None:
    assert _drive(api, _deploy(api, f"{IMAGE}@{DIGEST}")) == "Succeeded"
    frontend = "registry.addtocloud.local/addtocloud/frontend:v1"
    assert _drive(api, _deploy(api, frontend, service="frontend")) == "Succeeded"
    # A hand edit of the api's route in azure: drift there, so api in local is a warning; frontend healthy.
    weights = '[{"op":"replace","path":"/spec/http/0/route/0/weight","value":80},' + (
        '{"op":"replace","path":"/spec/http/0/route/1/weight","value":20}]'
    )
    kubectl(running_sim, "azure", "patch", "virtualservice", "api", "--type=json", "-p", weights)
    environments = ["dev", "local", "local-prod", "prod", "staging"]  # sorted by name
    with _browser(api, "viewer") as viewer:

        def grid(**filters: str) -> tuple[list[str], list[str]]:
            page = viewer.get("/", params=filters)
            fragment = viewer.get("/overview/grid", params=filters)  # what the live channel refetches
            assert page.status_code == 200 and fragment.status_code == 200, page.text
            assert _grid(fragment.text) == _grid(page.text)
            return _grid(page.text)

        assert grid() == (["api", "frontend"], environments)
        assert grid(service="frontend") == (["frontend"], environments)
        assert grid(environment="local-prod") == (["api", "frontend"], ["local-prod"])
        assert grid(service="api", environment="local") == (["api"], ["local"])
        assert grid(health="warning") == (["api"], ["local"])
        assert grid(health="healthy") == (["frontend"], ["local"])
        assert grid(health="failing") == ([], [])
        assert "Nothing matches these filters." in viewer.get("/", params={"health": "failing"}).text

        overview = viewer.get("/", params={"environment": "local"}).text
    [running] = [v["running"] for v in api.call("viewer", "GET", "/status").json() if v["service"] == "api"]
    cell = re.search(
        r'<td class="cell warning" data-service="api" data-environment="local".*?</td>', overview, re.S
    )
    assert cell is not None, overview
    commit = running["git_commit"]
    assert f'<code title="{commit}">{commit[:8]}</code>' in cell[0]
    assert f'<code title="{IMAGE}@{DIGEST}">sha256:0123456789ab</code>' in cell[0]
    assert re.search(rf'<span title="{re.escape(running["since"])}">\d+[smhd] ago</span>', cell[0]), cell[0]
    drift = re.findall(r'<li data-cluster="(\w+)">.*?<span class="drift">([^<]+)</span>', cell[0], re.S)
    assert drift == [("aws", "in sync"), ("azure", "drifted"), ("gcp", "in sync")]
