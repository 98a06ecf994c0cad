"""The promotion view, the history search and the access pages in a real browser, against a real
`orchestrator serve` driving the emulated clusters (`orchestrator sim up`).

- A release that Succeeded in `local` is promoted to `local-prod` with the promotion view's button (after a
  confirmation): the server queues it as the REST API does, it waits for an approval there, and once an
  approver approves it every emulated cluster of local-prod runs the release's image — the page follows it
  over the live channel. A viewer sees no promote button and is refused (403) posting the form anyway.
- History finds that deployment by service, environment, user, outcome and date, and nothing for another
  outcome; the DORA figures count it.
- Someone signed out asks for access; a viewer sees no review queue and is refused (403) approving; an admin
  approves the request with a role, makes a token (shown once) and revokes it.
- axe-core finds no serious violation on any of these pages; screenshots are saved beside the test's.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import httpx
from playwright.sync_api import Browser, Page, expect

from tests.browser.accessibility import assert_accessible
from tests.browser.conftest import USERS, Dashboard, Shot, sign_in
from tests.e2e.test_deploy_cli import CLUSTERS, kubectl_json

IMAGE = "registry.addtocloud.local/addtocloud/api@sha256:" + "c" * 64
PROD_NAMESPACE = "addtocloud-prod"  # environments/local-prod.yaml


def _session_token(page: Page) -> str:
    """The session cookie holds an API token: the test's REST calls act as the signed-in user."""
    return next(c["value"] for c in page.context.cookies() if c["name"] == "orchestrator_session")


def _api(dashboard: Dashboard, page: Page) -> httpx.Client:
    return httpx.Client(
        base_url=f"{dashboard.base}/api/v1",
        headers={"Authorization": f"Bearer {_session_token(page)}"},
        timeout=30,
    )


def _settled(api: httpx.Client, deployment_id: str, phase: str, seconds: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        view: dict[str, Any] = api.get(f"/deployments/{deployment_id}").json()
        if view["phase"] == phase or time.monotonic() > deadline:
            assert view["phase"] == phase, view
            return view
        time.sleep(0.3)


def _csrf(page: Page) -> str:
    return page.locator("input[name=csrf_token]").first.input_value()


def _fits_a_phone(page: Page) -> None:
    """Nothing makes the page scroll sideways (wide tables scroll inside their own box)."""
    widest = page.evaluate(
        """() => [...document.querySelectorAll('body *')]
            .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1 && !e.closest('.scroll'))
            .map((e) => e.tagName + '.' + e.className)"""
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"], widest  # type: ignore[index]


def _new_page(browser: Browser) -> Page:
    other = browser.new_context(viewport={"width": 390, "height": 844}).new_page()  # a phone's width
    other.set_default_timeout(15_000)
    return other


def test_promote_from_the_promotion_view_then_search_the_history(
    page: Page, browser: Browser, dashboard: Dashboard, shot: Shot
) -> None:
    sign_in(page, dashboard, "deployer", goto="/promotion")
    with _api(dashboard, page) as deployer:
        made = deployer.post("/deployments", json={"service": "api", "environment": "local", "image": IMAGE})
        assert made.status_code == 202, made.text
        source = _settled(deployer, made.json()["id"], "Succeeded")

    page.reload()
    local = page.locator('[data-service=api][data-environment="local"]')
    prod = page.locator('[data-service=api][data-environment="local-prod"]')
    expect(local).to_contain_text(source["release"]["git_commit"][:8])
    expect(local).to_contain_text("sha256:" + "c" * 12)
    expect(prod).to_contain_text("no release has Succeeded here")
    button = page.get_by_role("button", name="Promote api from local to local-prod")
    expect(button).to_be_visible()
    assert_accessible(page)

    # A viewer (on a phone) sees the same stages without the button, and posting the form anyway is refused.
    viewer = _new_page(browser)
    try:
        sign_in(viewer, dashboard, "viewer", goto="/promotion")
        expect(viewer.locator('[data-service=api][data-environment="local"]')).to_contain_text("sha256:")
        expect(viewer.get_by_role("button", name="Promote api from local to local-prod")).to_have_count(0)
        _fits_a_phone(viewer)
        shot(viewer, "viewer-promotion-phone")
        refused = viewer.request.post(
            f"{dashboard.base}/promotion/api/promote", form={"to": "local-prod", "csrf_token": _csrf(viewer)}
        )
        assert refused.status == 403 and "viewers only read" in refused.text(), refused.text()
    finally:
        viewer.context.close()

    page.once("dialog", lambda dialog: dialog.accept())  # the confirmation
    button.click()
    notice = page.get_by_role("status")
    expect(notice).to_contain_text("Promoted api release")
    expect(notice).to_contain_text("AwaitingApproval")
    expect(prod.locator("[data-waiting]")).to_contain_text("waiting for an approval")
    expect(button).to_have_count(0)  # one promotion at a time
    shot(page, "promotion-awaiting-approval")
    promoted_id = notice.get_by_role("link").get_attribute("href").rsplit("/", 1)[-1]  # type: ignore[union-attr]

    # An approver approves (through the REST API); the page follows the rollout without a reload.
    admin = _new_page(browser)
    try:
        sign_in(admin, dashboard, "admin")
        with _api(dashboard, admin) as approver:
            assert approver.post(f"/deployments/{promoted_id}/approve").status_code == 200
            promoted = _settled(approver, promoted_id, "Succeeded")
    finally:
        admin.context.close()
    assert (promoted["kind"], promoted["release"]["id"]) == ("promote", source["release"]["id"])
    expect(prod).to_contain_text("sha256:" + "c" * 12, timeout=20_000)
    expect(prod).to_contain_text("Succeeded")
    for cluster in CLUSTERS:  # the release landed on every emulated cluster of local-prod
        live = kubectl_json(dashboard.env, cluster, "get", "deployment", "api", "-n", PROD_NAMESPACE)
        assert live["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE, cluster
    shot(page, "promotion-succeeded")

    # History: the promotion found by every filter at once, on the server; another outcome finds nothing.
    page.get_by_role("link", name="History").click()
    today = datetime.now(UTC).date().isoformat()
    page.get_by_label("Service", exact=True).select_option("api")
    page.get_by_label("Environment", exact=True).select_option("local-prod")
    page.get_by_label("User", exact=True).fill(USERS["deployer"])
    page.get_by_label("Outcome", exact=True).select_option("Succeeded")
    page.get_by_label("From", exact=True).fill(today)
    page.get_by_label("To", exact=True).fill(today)
    page.get_by_role("button", name="Search").click()
    rows = page.locator("#history-results tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-deployment", promoted_id)
    expect(rows.first).to_contain_text("promote")
    assert "outcome=Succeeded" in page.url and f"from={today}" in page.url
    # The DORA figures for api in local-prod: one Succeeded deployment, and its chart drawn by uPlot.
    expect(page.locator(".dora-key").first).to_contain_text("from 1")
    expect(page.locator(".dora-key .uplot")).to_have_count(2)  # lead and recovery times: nothing to measure
    expect(page.get_by_text("no part of the window had anything to measure")).to_have_count(2)
    assert_accessible(page)
    shot(page, "history-search")

    page.get_by_label("Outcome", exact=True).select_option("Failed")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_text("No deployment matches this search.")).to_be_visible()
    page.goto(f"{dashboard.base}/history?from=2026-13-01")
    expect(page.get_by_role("alert")).to_contain_text("'2026-13-01' is not a date")


def test_request_access_reviewed_by_an_admin_and_tokens(
    page: Page, browser: Browser, dashboard: Dashboard, shot: Shot
) -> None:
    page.goto(f"{dashboard.base}/login")
    page.get_by_role("link", name="Request access").click()
    page.get_by_label("Email").fill("newcomer@example.com")
    page.get_by_label("Full name").fill("New Comer")
    page.get_by_label("Organization").fill("AddToCloud")
    page.get_by_label("Reason").fill("on call for the api")
    assert_accessible(page)
    page.get_by_role("button", name="Request access").click()
    expect(page.get_by_role("status")).to_contain_text("Your request for newcomer@example.com is waiting")
    shot(page, "access-requested")

    # A viewer sees their own tokens only: no queue, no users; approving anyway is refused by the rule.
    viewer = _new_page(browser)
    try:
        sign_in(viewer, dashboard, "viewer", goto="/access")
        expect(viewer.get_by_role("heading", name="Your API tokens")).to_be_visible()
        expect(viewer.get_by_text("Access requests waiting")).to_have_count(0)
        expect(viewer.locator("#users")).to_have_count(0)
        with _api(dashboard, viewer) as api:
            assert api.get("/access-requests").status_code == 403
        pending = dashboard_request_id(dashboard)
        refused = viewer.request.post(
            f"{dashboard.base}/access/requests/{pending}/approve",
            form={"role": "admin", "csrf_token": _csrf(viewer)},
        )
        assert refused.status == 403 and "may not review access requests" in refused.text()
        _fits_a_phone(viewer)
        shot(viewer, "viewer-access-phone")
    finally:
        viewer.context.close()

    sign_in(page, dashboard, "admin", goto="/access")
    request = page.locator("article.request", has_text="newcomer@example.com")
    expect(request).to_contain_text("on call for the api")
    assert_accessible(page)
    request.get_by_label("Role for newcomer@example.com").select_option("deployer")
    page.once("dialog", lambda dialog: dialog.accept())
    request.get_by_role("button", name="Approve newcomer@example.com").click()
    expect(page.get_by_role("status")).to_contain_text("newcomer@example.com approved")
    expect(page.locator('#users tr[data-user="newcomer@example.com"]')).to_contain_text("deployer")
    expect(page.get_by_text("Nobody is waiting.")).to_be_visible()
    user = page.locator('#users tr[data-user="newcomer@example.com"]')
    user.get_by_label("New role for newcomer@example.com").select_option("viewer")
    page.once("dialog", lambda dialog: dialog.accept())
    user.get_by_role("button", name="Change role of newcomer@example.com").click()
    expect(page.get_by_role("status")).to_contain_text("Role of newcomer@example.com changed")
    expect(page.locator('#users tr[data-user="newcomer@example.com"]')).to_contain_text("viewer")

    page.get_by_label("Token name").fill("ci")
    page.get_by_label("For user").fill("newcomer@example.com")
    page.get_by_role("button", name="Create token").click()
    secret = page.locator("[data-secret]").input_value()
    shot(page, "token-created")
    assert secret.startswith("atc_")
    with httpx.Client(
        base_url=f"{dashboard.base}/api/v1", headers={"Authorization": f"Bearer {secret}"}
    ) as api:
        assert api.get("/status").status_code == 200  # the token works as shown
        prefix = page.get_by_role("heading", name="New token").inner_text().split()[2]
        page.goto(f"{dashboard.base}/access")  # shown once: the page does not show it again
        expect(page.locator("[data-secret]")).to_have_count(0)
        row = page.locator(f'#tokens tr[data-token="{prefix}"]')
        page.once("dialog", lambda dialog: dialog.accept())
        row.get_by_role("button", name=f"Revoke {prefix}").click()
        expect(page.get_by_role("status")).to_contain_text(f"Token {prefix} revoked")
        expect(page.locator(f'#tokens tr[data-token="{prefix}"]')).to_contain_text("revoked")
        assert api.get("/status").status_code == 401
    assert_accessible(page)


def dashboard_request_id(dashboard: Dashboard) -> str:
    """The pending access request's id, read from the state the server uses."""
    from orchestrator.store import db
    from orchestrator.store import identity as store

    with db.open_sessions(dashboard.env["ORCHESTRATOR_DATABASE_URL"])() as session:
        [pending] = store.list_access_requests(session, "pending")
        return str(pending.id)
