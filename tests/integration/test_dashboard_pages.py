"""The promotion, history and access pages over real HTTP on SQLite and Postgres, without a browser: CSRF
on every POST (refused with nothing done), the rules on every action (403 whatever the page showed), the
search filtered in the database, and the promotion code's own refusals shown as pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from orchestrator.server.dashboard import csrf, session
from orchestrator.store import db
from orchestrator.store import identity as store
from tests.integration.api_fixtures import Api, api

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
