"""Screenshot a deployment page of a running dashboard, as README's picture was made (after `make demo`):

    .venv/bin/python scripts/dashboard_screenshot.py http://127.0.0.1:8080 admin@demo.local \
        docs/dashboard-deployment.png

Signs in with the email and the password read from ORCHESTRATOR_DEMO_PASSWORD (default: the demo's), opens
the newest RolledBack deployment of api in local and saves the page. Debian's chromium, driven by
Playwright (from the test extras); no browser is downloaded.
"""

from __future__ import annotations

import os
import sys

from playwright.sync_api import sync_playwright


def main(base: str, email: str, out: str) -> None:
    password = os.environ.get("ORCHESTRATOR_DEMO_PASSWORD", "demo-password")
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path="/usr/bin/chromium")
        page = browser.new_page(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
        page.goto(f"{base}/login")
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{base}/")
        # The session is an API token: the same cookie value reads the REST API.
        session = next(c["value"] for c in page.context.cookies() if c["name"] == "orchestrator_session")
        listed = page.request.get(
            f"{base}/api/v1/deployments?service=api&environment=local",
            headers={"Authorization": f"Bearer {session}"},
        ).json()
        bad = next(d for d in listed if d["phase"] == "RolledBack")
        page.goto(f"{base}/deployments/{bad['id']}")
        page.locator('figure.chart[data-chart="traffic"] canvas').wait_for()
        page.wait_for_timeout(500)  # the charts' first drawing
        page.screenshot(path=out, full_page=True)
        browser.close()


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: dashboard_screenshot.py BASE_URL EMAIL OUT.png")
    main(*sys.argv[1:])
