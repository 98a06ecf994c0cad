"""The README's configuration reference is generated from the models; it must not drift from them."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.config import Project
from orchestrator.config.pipeline import DEFAULT_TEMPLATES
from orchestrator.errors import ConfigError
from tests.helpers import REPO, copy_estate

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


def _cells(row: str) -> list[str]:
    """A Markdown table row's cells; `\\|` inside a cell (a Literal's alternatives) does not split it."""
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", row)[1:-1]]


def test_reference_marks_required_only_what_every_shipped_file_has() -> None:
    """A key the loader fills in (the file's name) or defaults is not 'required'; a required top-level key
    is in every shipped file, since the loader refuses a file without it."""
    for folder, rows in _reference_rows().items():
        cells = {_cells(row)[0].strip("`"): _cells(row)[2] for row in rows}
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


def _occurrence(document: Any, path: list[str]) -> tuple[Any, str] | None:
    """The mapping holding the first occurrence of a reference key (`clusters[].target.type`) in a document,
    and the key: `[]` is any item of a list, `<name>` any entry of a mapping."""
    head, *rest = path
    if isinstance(document, list) and head == "[]":
        candidates = list(document)
    elif isinstance(document, dict) and head == "<name>":
        candidates = list(document.values())
    elif isinstance(document, dict) and head in document:
        if not rest:
            return document, head
        candidates = [document[head]]
    else:
        return None
    for candidate in candidates:
        found = _occurrence(candidate, rest) if rest else None
        if found:
            return found
    return None


def _split_key(key: str) -> list[str]:
    return [part for part in re.split(r"\.|(?=\[\])|(?<=\[\])\.?", key) if part]


@pytest.mark.parametrize(("folder", "name"), [("environments", "local"), ("pipelines", "api")])
def test_reference_defaults_and_requirements_are_what_the_loader_does(
    tmp_path: Path, folder: str, name: str
) -> None:
    """Each key of a shipped file that the reference calls required is refused when left out; one with a
    default is never missed."""
    rows = _reference_rows()[folder]
    original = yaml.safe_load((REPO / folder / f"{name}.yaml").read_text())
    copy_estate(tmp_path)
    checked = 0
    for row in rows:
        cells = _cells(row)
        key, default = cells[0].split("`")[1], cells[2]
        if " with " in cells[0] or not default or "[].steps" in key:
            continue
        document = copy.deepcopy(original)
        found = _occurrence(document, _split_key(key))
        if found is None:
            continue
        holder, leaf = found
        del holder[leaf]
        (tmp_path / folder / f"{name}.yaml").write_text(yaml.safe_dump(document))
        project = Project(tmp_path)
        load = project.environment if folder == "environments" else project.pipeline
        checked += 1
        if default == "required":
            with pytest.raises(ConfigError, match="missing required key"):
                load(name)
        else:  # loads, or meets a rule across keys (an analysis step with neither templates nor metrics)
            try:
                load(name)
            except ConfigError as exc:
                assert "missing required key" not in exc.reason, (key, str(exc))
    assert checked >= 5
