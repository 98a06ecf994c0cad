"""axe-core in the page: the accessibility rules checked by the same engine browsers' tools use.

axe-core 4.14.1 is vendored under `vendor/` (see vendor/VENDORED.md) and evaluated in the page through
Playwright (DevTools evaluation, which the dashboard's Content-Security-Policy does not block)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import Page

AXE = Path(__file__).parent / "vendor" / "axe-core-4.14.1" / "axe.min.js"
BLOCKING = ("serious", "critical")


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """Every violation axe-core finds in the page as it is now (WCAG 2.x A and AA, and best practices)."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text())
    result: list[dict[str, Any]] = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
    )
    return result


def assert_accessible(page: Page) -> list[dict[str, Any]]:
    """No serious or critical violation; returns the minor and moderate ones (for the test to look at)."""
    found = axe_violations(page)
    blocking = [v for v in found if v.get("impact") in BLOCKING]
    described = [
        f"{v['id']} ({v['impact']}): {v['help']} — " + "; ".join(n["target"][0] for n in v["nodes"][:5])
        for v in blocking
    ]
    assert not blocking, "axe-core found serious violations:\n" + "\n".join(described)
    return [v for v in found if v.get("impact") not in BLOCKING]
