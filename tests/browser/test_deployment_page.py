"""The deployment page in a real browser, against `orchestrator serve` driving rollouts on the emulated
clusters: the canary's weights move and its rollback shows without a reload, on the overview and the
deployment page alike; an approver approves from the page; a viewer sees no button and is refused (403)
when posting anyway."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.accessibility import assert_accessible
from tests.browser.conftest import Dashboard, Shot, sign_in

NOT_RELOADED = "() => window.__still_the_same_page === true"


def _mark(page: Page) -> None:
    """Mark the loaded document: a reload would lose the mark."""
    page.evaluate("() => { window.__still_the_same_page = true; }")


def test_live_canary_weights_move_and_the_rollback_shows_without_a_reload(
    page: Page, dashboard: Dashboard, shot: Shot
) -> None:
    first = dashboard.deploy()  # nothing runs yet: deployed directly
    dashboard.wait_for_phase(first, "Succeeded")

    sign_in(page, dashboard, "deployer")
    cell = page.locator('td.cell[data-service="api"][data-environment="local"]')
    expect(cell).to_have_attribute("data-phase", "Succeeded")
    _mark(page)

    # A bad release (30 % errors): the canary takes 20 %, the success-rate gate fails, every cluster it
    # touched goes back to stable.
    bad = dashboard.deploy(set=["env.RELEASE=3", "sim.errorRate=0.3"])
    detail = page.context.new_page()
    detail.goto(f"{dashboard.base}/deployments/{bad}")
    _mark(detail)
    aws = detail.locator('#clusters tr[data-cluster="aws"]')
    expect(aws.locator(".canary-weight")).to_have_text("20%", timeout=30_000)  # moved, no reload
    expect(cell).to_have_attribute("data-phase", "Progressing")  # the overview follows too
    expect(cell.locator('li[data-cluster="aws"] .weights')).to_contain_text("canary 20%")
    shot(detail, "canary-at-20")

    expect(detail.locator(".phase-badge")).to_have_text("RolledBack", timeout=60_000)
    expect(aws.locator(".canary-weight")).to_have_text("0%")
    expect(aws.locator(".stable-weight")).to_have_text("100%")
    expect(detail.locator(".summary .message")).to_contain_text("request-success-rate")
    expect(detail.locator('#events tr[data-type="measurement"]').first).to_contain_text("Failed")
    expect(cell).to_have_attribute("data-phase", "RolledBack")
    expect(cell).to_have_class("cell failing")
    assert detail.evaluate(NOT_RELOADED) and page.evaluate(NOT_RELOADED)

    # The charts: the traffic went 0 -> 20 -> 0 in aws; the gate's chart holds its measurement, its
    # threshold (99 %) and the stable's figure beside the canary's.
    charts = dashboard_json(detail, f"{dashboard.base}/deployments/{bad}/charts.json")
    traffic = next(c for c in charts if c["id"] == "traffic")
    aws_weights = next(s["values"] for s in traffic["series"] if s["label"] == "aws")
    assert 20 in aws_weights and aws_weights[-1] == 0
    gate = next(c for c in charts if c["kind"] == "gate")
    assert gate["threshold"] == {"op": "<", "value": 99.0}
    labels = {s["label"] for s in gate["series"]}
    assert {"aws canary", "aws stable"} <= labels
    canary = next(s["values"] for s in gate["series"] if s["label"] == "aws canary")
    assert any(v is not None and v < 99 for v in canary)
    expect(detail.locator('figure.chart[data-chart="traffic"] canvas')).to_be_visible()
    expect(detail.locator("figure.chart").nth(1)).to_be_visible()
    # A deployer may retry the rolled-back one and roll back nothing here; no approval is waited for.
    expect(detail.get_by_role("button", name="Retry")).to_be_visible()
    expect(detail.get_by_role("button", name="Approve")).to_have_count(0)
    shot(detail, "rolled-back")
    assert_accessible(detail)
    assert_accessible(page)

    # Retry, confirmed: a new deployment of the same release, recorded as the deployer's, and the browser
    # is on its page. (Dismissing the question first does nothing.)
    answers = iter([False, True])
    detail.on("dialog", lambda dialog: dialog.accept() if next(answers) else dialog.dismiss())
    retry = detail.get_by_role("button", name="Retry")
    retry.click()
    expect(detail).to_have_url(f"{dashboard.base}/deployments/{bad}")
    retry.click()
    expect(detail).not_to_have_url(f"{dashboard.base}/deployments/{bad}")
    again = detail.url.rsplit("/", 1)[-1]
    retried = dashboard.api("viewer", "GET", f"/deployments/{again}").json()
    original = dashboard.api("viewer", "GET", f"/deployments/{bad}").json()
    assert retried["release"]["id"] == original["release"]["id"] and retried["actor"] == "dev@example.com"
    expect(detail.locator('#events tr[data-type="created"]')).to_contain_text("dev@example.com")
    listed = dashboard.api("viewer", "GET", "/deployments?service=api&environment=local").json()
    same = [d["id"] for d in listed if d["release"]["id"] == original["release"]["id"]]
    assert sorted(same) == sorted([bad, again])  # the dismissed question retried nothing
    detail.close()


def dashboard_json(page: Page, url: str) -> list[dict]:
    answer = page.request.get(url)
    assert answer.ok, answer.text()
    charts: list[dict] = answer.json()["charts"]
    return charts


def test_an_approver_approves_from_the_page_and_a_viewer_cannot(
    page: Page, dashboard: Dashboard, shot: Shot
) -> None:
    first = dashboard.deploy()
    dashboard.wait_for_phase(first, "Succeeded")
    promoted = dashboard.api("deployer", "POST", "/services/api/promote", json={"to": "local-prod"})
    assert promoted.status_code == 202, promoted.text
    waiting = promoted.json()["deployment"]["id"]
    dashboard.wait_for_phase(waiting, "AwaitingApproval")

    # A viewer sees the deployment and no control; posting the approval anyway (with the session's own
    # CSRF token, so only the rules can refuse it) is 403 and changes nothing.
    sign_in(page, dashboard, "viewer", goto=f"/deployments/{waiting}")
    expect(page.locator(".phase-badge")).to_have_text("AwaitingApproval")
    expect(page.locator(".controls button")).to_have_count(0)
    token = page.locator('input[name="csrf_token"]').first.get_attribute("value")
    url = f"{dashboard.base}/deployments/{waiting}/approve"
    refused = page.request.post(url, form={"csrf_token": token or ""})
    assert refused.status == 403, refused.text()
    assert "viewer@example.com (viewer) may not approve in local-prod" in refused.text()
    assert dashboard.wait_for_phase(waiting, "AwaitingApproval")["phase"] == "AwaitingApproval"
    shot(page, "viewer")
    # On a phone the page still fits: nothing wider than the screen but the tables' own scrolling.
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    expect(page.locator(".phase-badge")).to_have_text("AwaitingApproval")
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1")
    shot(page, "viewer-phone")
    page.set_viewport_size({"width": 1280, "height": 900})

    # The admin (local-prod's approvers: admin) approves from the page, after confirming.
    admin = page.context.browser.new_context()  # type: ignore[union-attr]
    approver = admin.new_page()
    sign_in(approver, dashboard, "admin", goto=f"/deployments/{waiting}")
    asked: list[str] = []
    approver.on("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    approver.get_by_role("button", name="Approve", exact=True).click()
    expect(approver.locator(".phase-badge")).to_have_text("Succeeded", timeout=60_000)
    assert asked and asked[0].startswith("Approve api in local-prod")
    dashboard.wait_for_phase(waiting, "Succeeded")
    events = dashboard.api("viewer", "GET", f"/deployments/{waiting}/events").json()
    controls = [(e["type"], e["actor"]) for e in events if e["type"] == "control"]
    assert controls == [("control", "admin@example.com")], events  # the approval, by whom it was
    expect(approver.locator("#events")).to_contain_text("admin@example.com")
    shot(approver, "approved")
    admin.close()
