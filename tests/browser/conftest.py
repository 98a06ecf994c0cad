"""Browser tests: Debian's chromium driven by Playwright against a real `orchestrator serve`.

- The browser is /usr/bin/chromium (Debian's `chromium` package, which `.ci/setup.sh` installs); Playwright
  never downloads one. Its absence fails the tests, it never skips them.
- `dashboard` is `orchestrator sim up` plus `orchestrator serve` in processes of their own, on a private
  state folder and SQLite database, with a user of each role whose password is PASSWORD.
- `page` is a fresh browser context (cookies of its own) per test; when the test ends, its page is saved as
  `<artifacts>/<test>/final.png` beside any `shot(page, name)` the test took. The artifacts folder is
  `test-artifacts/` at the repository's root (gitignored), or $ORCHESTRATOR_TEST_ARTIFACTS.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from orchestrator.identity import passwords
from orchestrator.store import db
from orchestrator.store import identity as store
from tests.helpers import REPO, run_cli
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

    def cli(self, *args: str) -> str:
        """Run a command against the same state as the server; its output (it must succeed)."""
        done = run_cli(*args, env=self.env)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout


@pytest.fixture(scope="session")
def playwright_driver() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
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
    log = tmp_path / "serve.log"
    with serve_process(env, log) as base:
        yield Dashboard(base, env, log)


def _artifact_folder(request: pytest.FixtureRequest) -> Path:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid.split("::", 1)[-1])
    folder = artifacts_dir() / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(15_000)
    opened.artifacts = _artifact_folder(request)  # type: ignore[attr-defined]
    try:
        yield opened
    finally:
        try:
            opened.screenshot(path=str(opened.artifacts / "final.png"), full_page=True)  # type: ignore[attr-defined]
        finally:
            context.close()


def shot(page: Page, name: str) -> Path:
    """Save the page as `<artifacts>/<test>/<name>.png`; its path."""
    path: Path = page.artifacts / f"{name}.png"  # type: ignore[attr-defined]
    page.screenshot(path=str(path), full_page=True)
    return path


def sign_in(page: Page, dashboard: Dashboard, role: str, *, goto: str = "/") -> None:
    """Sign in through the login form as the user of `role`, landing on `goto`."""
    page.goto(f"{dashboard.base}{goto}")
    page.get_by_label("Email").fill(USERS[role])
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{dashboard.base}{goto}")
