"""Browser tests: Debian's chromium driven by Playwright against a real `orchestrator serve`.

- The browser is /usr/bin/chromium (Debian's `chromium` package, which `.ci/setup.sh` installs); Playwright
  never downloads one. Its absence fails the tests, it never skips them.
- `dashboard` is `orchestrator sim up` plus `orchestrator serve` in processes of their own, on a private
  state folder and SQLite database, with a user of each role whose password is PASSWORD.
- `page` is a fresh browser context (cookies of its own) per test; when the test ends, its page is saved as
  `<artifacts>/<test>/final.png` beside any `shot(page, name)` the test took (the `shot` fixture). The
  artifacts folder is `test-artifacts/` at the repository's root (gitignored), or
  $ORCHESTRATOR_TEST_ARTIFACTS.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from orchestrator.identity import passwords
from orchestrator.store import db
from orchestrator.store import identity as store
from tests.helpers import REPO, run_cli
from tests.integration.api_fixtures import add_user
from tests.integration.rollout_fixtures import estate_with_strategy
from tests.server_fixtures import serve_process

CHROMIUM = Path("/usr/bin/chromium")
PASSWORD = "correct horse battery"
USERS = {"admin": "admin@example.com", "deployer": "dev@example.com", "viewer": "viewer@example.com"}
# A canary with a gate: a release with errors rolls back at the analysis; a healthy one moves on.
GATED = """strategy:
  canary:
    steps:
      - setWeight: 20
      - pause: {duration: 1s}
      - analysis:
          templates:
            - templateName: request-success-rate
      - setWeight: 60
      - pause: {duration: 1s}
"""


def artifacts_dir() -> Path:
    return Path(os.environ.get("ORCHESTRATOR_TEST_ARTIFACTS") or REPO / "test-artifacts")


@dataclass
class Dashboard:
    base: str
    env: dict[str, str]  # what a local command run beside the server needs (state folder, database, root)
    log: Path
    tokens: dict[str, str]  # role -> an API token of that role's user, for the REST API

    def cli(self, *args: str) -> str:
        """Run a command against the same state as the server; its output (it must succeed)."""
        done = run_cli(*args, env=self.env)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def api(self, role: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Call the REST API (`/api/v1` + path) as the user of `role`."""
        headers = {"Authorization": f"Bearer {self.tokens[role]}"}
        return httpx.request(method, f"{self.base}/api/v1{path}", headers=headers, timeout=60, **kwargs)

    def deploy(self, role: str = "deployer", **body: Any) -> str:
        """POST /deployments (service api to local unless said); the new deployment's id."""
        wanted = {"service": "api", "environment": "local", **body}
        answer = self.api(role, "POST", "/deployments", json=wanted)
        assert answer.status_code == 202, answer.text
        return str(answer.json()["id"])

    def wait_for_phase(self, deployment_id: str, *phases: str, timeout: float = 90) -> dict[str, Any]:
        """The deployment once its phase is one of `phases` (read through the API)."""
        deadline = time.monotonic() + timeout
        while True:
            view: dict[str, Any] = self.api("viewer", "GET", f"/deployments/{deployment_id}").json()
            if view["phase"] in phases:
                return view
            assert time.monotonic() < deadline, f"still {view['phase']}, not {phases}: {view.get('message')}"
            time.sleep(0.3)


# Module scope, not session: while Playwright's sync API runs, its event loop is the thread's running loop,
# so any later test in the same xdist worker that calls asyncio.run (the Postgres queue's installation in
# `db upgrade`, for one) would fail. pytest tears a module's fixtures down before the next module's test.
@pytest.fixture(scope="module")
def playwright_driver() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"the browser tests need Debian's chromium at {CHROMIUM} (apt-get install chromium)")
    launched = playwright_driver.chromium.launch(executable_path=str(CHROMIUM), headless=True)
    yield launched
    launched.close()


@pytest.fixture
def dashboard(tmp_path: Path, running_sim: dict[str, str]) -> Iterator[Dashboard]:
    env = {**running_sim, "ORCHESTRATOR_ROOT": str(estate_with_strategy(tmp_path / "estate", GATED))}
    url = env["ORCHESTRATOR_DATABASE_URL"]
    db.upgrade(url)
    hashed = passwords.hash_password(PASSWORD)
    with db.open_sessions(url).begin() as session:
        for role, email in USERS.items():
            store.create_user(session, email, role, password_hash=hashed)
    tokens = {role: add_user(url, email, role) for role, email in USERS.items()}
    log = tmp_path / "serve.log"
    with serve_process(env, log) as base:
        yield Dashboard(base, env, log, tokens)


Shot = Callable[[Page, str], Path]


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    """This test's folder of screenshots: `<artifacts>/<test name>/`."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid.split("::", 1)[-1])
    folder = artifacts_dir() / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def shot(artifacts: Path) -> Shot:
    """`shot(page, name)` saves the page as `<artifacts>/<test>/<name>.png` and returns its path."""

    def take(target: Page, name: str) -> Path:
        path = artifacts / f"{name}.png"
        target.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture
def page(browser: Browser, artifacts: Path) -> Iterator[Page]:
    """A page in a fresh context; what it shows when the test ends is saved as `final.png`."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(15_000)
    try:
        yield opened
    finally:
        try:
            opened.screenshot(path=str(artifacts / "final.png"), full_page=True)
        finally:
            context.close()


def sign_in(page: Page, dashboard: Dashboard, role: str, *, goto: str = "/") -> None:
    """Sign in through the login form as the user of `role`, landing on `goto`."""
    page.goto(f"{dashboard.base}{goto}")
    page.get_by_label("Email").fill(USERS[role])
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{dashboard.base}{goto}")
