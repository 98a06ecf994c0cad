"""pyproject declares what the code imports, and nothing it does not.

Each declared runtime dependency must be imported somewhere in the project (or be listed below with the
reason it is needed without an import); each third-party module the project imports must come from a
declared distribution (runtime or test).
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from functools import cache
from importlib.metadata import packages_distributions

from tests.helpers import REPO

FOLDERS = ("orchestrator", "tests", "benchmarks", "scripts")
OWN = {"orchestrator", "tests", "benchmarks", "scripts"}
# Needed at run time without an import of their own.
NOT_IMPORTED = {
    "psycopg": "SQLAlchemy loads it for postgresql+psycopg:// URLs",
    "kubernetes-validate": "its strict Kubernetes schemas are read as data files",
    "ruamel-yaml-clib": "ruamel.yaml's C parser, loaded by ruamel.yaml itself",
    "python-multipart": "Starlette parses the dashboard's forms with it",
}
# Imported, and part of a declared distribution's own release.
BUNDLED = {"pydantic_core": "pydantic"}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    assert match, requirement
    return _normalise(match.group(1))


def _declared() -> tuple[set[str], set[str]]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    runtime = {_requirement_name(r) for r in project["dependencies"]}
    test = {_requirement_name(r) for r in project["optional-dependencies"]["test"]}
    return runtime, test


def _imported_modules() -> set[str]:
    found: set[str] = set()
    for folder in FOLDERS:
        for path in (REPO / folder).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    found.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    found.add(node.module.split(".")[0])
    return {m for m in found if m not in sys.stdlib_module_names and m not in OWN and m != "__future__"}


@cache
def _providers() -> dict[str, list[str]]:
    return packages_distributions()


def _distributions_of(module: str) -> set[str]:
    return {_normalise(d) for d in _providers().get(module, [])}


def test_every_declared_runtime_dependency_is_imported() -> None:
    runtime, _ = _declared()
    imported_from = set()
    for module in _imported_modules():
        imported_from |= _distributions_of(module)
    unused = sorted(d for d in runtime if d not in imported_from and d not in NOT_IMPORTED)
    assert unused == [], f"declared in pyproject but imported nowhere: {unused}"


def test_every_imported_module_is_declared() -> None:
    runtime, test = _declared()
    declared = runtime | test
    undeclared = []
    for module in sorted(_imported_modules()):
        if module in BUNDLED:
            assert _normalise(BUNDLED[module]) in declared
            continue
        distributions = _distributions_of(module)
        assert distributions, f"{module} is imported but no installed distribution provides it"
        if not distributions & declared:
            undeclared.append(f"{module} ({', '.join(sorted(distributions))})")
    assert undeclared == [], f"imported but not declared in pyproject: {undeclared}"
