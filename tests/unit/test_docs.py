"""The README's configuration reference is generated from the models; it must not drift from them."""

from __future__ import annotations

import re
import subprocess
import sys

import yaml

from orchestrator.config.pipeline import DEFAULT_TEMPLATES
from tests.helpers import REPO

NAME_KEY = {"pipelines": "service", "environments": "name"}


def test_readme_configuration_reference_is_current() -> None:
    generated = subprocess.run(
        [sys.executable, "scripts/config_reference.py"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    readme = (REPO / "README.md").read_text()
    section = readme.split("<!-- config-reference:start -->\n", 1)[1].split(
        "<!-- config-reference:end -->", 1
    )[0]
    assert section == generated, "run: python scripts/config_reference.py --write"


def _reference_rows() -> dict[str, list[str]]:
    readme = (REPO / "README.md").read_text()
    section = readme.split("<!-- config-reference:start -->\n", 1)[1].split("<!-- config-reference:end -->")[
        0
    ]
    rows: dict[str, list[str]] = {}
    current = ""
    for line in section.splitlines():
        if line.startswith("#### "):
            current = line.split("`")[1].split("/")[0]
            rows[current] = []
        elif line.startswith("| `"):
            rows[current].append(line)
    return rows


def test_reference_marks_required_only_what_every_shipped_file_has() -> None:
    """A key the loader fills in (the file's name) or defaults is not 'required'; a required top-level key
    is in every shipped file, since the loader refuses a file without it."""
    for folder, rows in _reference_rows().items():
        cells = {row.split("|")[1].strip().strip("`"): row.split("|")[3].strip() for row in rows}
        assert cells[NAME_KEY[folder]] == "the file name"
        required = [key for key, default in cells.items() if default == "required" and "." not in key]
        for path in sorted((REPO / folder).glob("*.yaml")):
            document = yaml.safe_load(path.read_text()) or {}
            assert all(key in document for key in required), (path, required)
        assert "see below" not in " ".join(cells.values())


def test_reference_lists_the_default_templates() -> None:
    readme = (REPO / "README.md").read_text()
    listed = readme.split("Default `templates`:\n\n", 1)[1].split("\n\n", 1)[0]
    assert listed.splitlines() == [f"- `{name}`" for name in DEFAULT_TEMPLATES]


def test_docs_link_only_to_files_in_the_repository() -> None:
    for path in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        text = path.read_text()
        for word in ("../shared/", "SPEC", "seed-architecture"):
            assert word not in text, (path.name, word)
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
            if "://" not in target:
                assert (path.parent / target).exists(), (path.name, target)
