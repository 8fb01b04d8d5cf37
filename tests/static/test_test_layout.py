"""The tests' own layout: helpers are shared through tests/support, never by importing a test
module (or a conftest) from another."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support.paths import REPO

TIERS = ("unit", "component", "integration", "static", "packaging")


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def modules_of_the_tiers() -> list[Path]:
    return sorted(p for tier in TIERS for p in (REPO / "tests" / tier).rglob("*.py"))


@pytest.mark.parametrize(
    "module", modules_of_the_tiers(), ids=lambda p: p.relative_to(REPO).as_posix()
)
def test_no_test_module_imports_another(module: Path) -> None:
    tiers = tuple(f"tests.{tier}" for tier in TIERS)
    wrong = sorted(name for name in imported_modules(module) if name.startswith(tiers))
    assert wrong == [], f"import from tests/support instead: {wrong}"
