"""The dashboard's frame in a real browser: signing in and out, the session cookie, CSRF, the overview."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect

from tests.browser.accessibility import assert_accessible
from tests.browser.conftest import PASSWORD, USERS, Dashboard, Shot, sign_in


def test_sign_in_overview_and_sign_out(page: Page, dashboard: Dashboard, shot: Shot) -> None:
    page.goto(f"{dashboard.base}/")
    expect(page).to_have_url(f"{dashboard.base}/login?next=%2F")  # signed out: the login form first
    assert_accessible(page)

    page.get_by_label("Email").fill(USERS["deployer"])
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text(f"wrong email or password for {USERS['deployer']}")
    shot(page, "wrong-password")

    sign_in(page, dashboard, "deployer")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.locator("header")).to_contain_text("dev@example.com (deployer)")
    cookie = next(c for c in page.context.cookies() if c["name"] == "orchestrator_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and not cookie["secure"]  # plain HTTP here
    # The session is an API token named `dashboard`, as `tokens list` shows it.
    assert "dashboard" in dashboard.cli("tokens", "list", "--token", _token(page))
    assert_accessible(page)

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{dashboard.base}/login")
    # Signing out revoked the token: the old cookie opens nothing, not even the REST API.
    bearer = {"Authorization": f"Bearer {cookie['value']}"}
    answer = httpx.get(f"{dashboard.base}/api/v1/status", headers=bearer)
    assert answer.status_code == 401 and "revoked" in answer.json()["detail"]


def _token(page: Page) -> str:
    return next(c["value"] for c in page.context.cookies() if c["name"] == "orchestrator_session")


def test_posts_without_the_sessions_csrf_token_are_refused(dashboard: Dashboard) -> None:
    with httpx.Client(base_url=dashboard.base) as client:
        # The login form's own token is needed too: a forged login is refused without signing in.
        forged = client.post("/login", data={"email": USERS["admin"], "password": PASSWORD})
        assert forged.status_code == 403 and "orchestrator_session" not in forged.cookies
        form = client.get("/login").text
        login_csrf = form.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        signed = client.post(
            "/login", data={"email": USERS["admin"], "password": PASSWORD, "csrf_token": login_csrf}
        )
        assert signed.status_code == 303 and client.cookies.get("orchestrator_session")
        # Signed in, a POST without the token (a page elsewhere cannot read it) does nothing.
        for data in ({}, {"csrf_token": "x" * 43}):
            refused = client.post("/logout", data=data)
            assert refused.status_code == 403 and "CSRF token" in refused.text
        assert client.get("/").status_code == 200  # still signed in: the forged sign-out did nothing
