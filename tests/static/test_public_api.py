"""Each package's `__all__` is its real public API: what other packages use is listed there.

A name that code in one capability (`shared.core`, `shared.money`, ...; or a function's
`main.py`) imports from another must be in an `__all__`: the package's, when the package's
`__init__` loads the module it comes from, or else the module's own (a module its package
leaves to be imported by name because it needs libraries not every function ships). Inside a
package, modules use each other freely.
"""

from __future__ import annotations

import ast
import importlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.paths import REPO

SHARED = REPO / "shared"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_of(module: str) -> Path:
    folder = REPO.joinpath(*module.split("."))
    return folder / "__init__.py" if folder.is_dir() else folder.with_suffix(".py")


def is_package(module: str) -> bool:
    return REPO.joinpath(*module.split("."), "__init__.py").exists()


def capability(module: str) -> str:
    """`shared.media.reels.maker` -> `shared.media`: the unit whose insides are private."""
    return ".".join(module.split(".")[:2])


def declared_all(module: str) -> set[str] | None:
    for node in ast.parse(source_of(module).read_text()).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "__all__" for target in node.targets
        ):
            return set(ast.literal_eval(node.value))
    return None


def loaded_by(package: str, module: str) -> bool:
    for node in ast.parse(source_of(package).read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == module:
                return True
            if node.module == package and any(
                f"{package}.{alias.name}" == module for alias in node.names
            ):
                return True
    return False


def public_home(module: str) -> str:
    """Where a name imported from `module` must be listed: its package, if that loads it."""
    if is_package(module):
        return module
    package = module.rsplit(".", 1)[0]
    return package if loaded_by(package, module) else module


@dataclass(frozen=True)
class CrossImport:
    importer: str
    module: str
    name: str


def cross_imports() -> list[CrossImport]:
    files = sorted(SHARED.rglob("*.py")) + sorted((REPO / "functions").glob("*/main.py"))
    found = []
    for path in files:
        importer = module_name(path)
        own = capability(importer) if importer.startswith("shared.") else importer
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom) or not node.module:
                continue
            if not node.module.startswith("shared.") or capability(node.module) == own:
                continue
            found += [CrossImport(importer, node.module, alias.name) for alias in node.names]
    return found


def test_the_code_does_import_across_packages() -> None:
    # Guards the scan itself: an empty list would make the test below pass for nothing.
    modules = {c.module for c in cross_imports()}
    assert "shared.creations.lifecycle" in modules
    assert any(c.importer.startswith("functions.") for c in cross_imports())


def test_names_used_across_packages_are_in_an_all() -> None:
    unlisted = []
    for use in cross_imports():
        home = public_home(use.module)
        listed = declared_all(home)
        if listed is None or use.name not in listed:
            unlisted.append(f"{use.importer} imports {use.name} from {use.module}: not in {home}")
    assert not unlisted, "\n".join(unlisted)


PACKAGES = sorted(module_name(p) for p in SHARED.rglob("__init__.py"))


@pytest.mark.parametrize("package", PACKAGES)
def test_every_package_names_its_api_and_every_name_exists(package: str) -> None:
    listed = declared_all(package)
    if package == "shared":
        assert listed is None  # the root only documents its packages
        return
    assert listed, f"{package}/__init__.py has no __all__"
    loaded = importlib.import_module(package)
    assert [name for name in sorted(listed) if not hasattr(loaded, name)] == []
