"""The README's configuration reference is generated from the models; it must not drift from them."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import REPO


def test_readme_configuration_reference_is_current() -> None:
    generated = subprocess.run(
        [sys.executable, "scripts/config_reference.py"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    readme = (REPO / "README.md").read_text()
    section = readme.split("<!-- config-reference:start -->\n", 1)[1].split(
        "<!-- config-reference:end -->", 1
    )[0]
    assert section == generated, "run: python scripts/config_reference.py --write"
