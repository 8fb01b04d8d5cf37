"""The docs stand alone and name what exists.

On a user's clone only the repository is there, so every relative link in a tracked Markdown
file must resolve inside it. And a doc (or a docstring, or a comment) that names a file, a
module, a `make` target or a setting must name one that exists: a stale name is how a
newcomer is sent the wrong way after things move.
"""

from __future__ import annotations

import ast
import importlib
import io
import re
import subprocess
import tokenize
from functools import cache
from pathlib import Path

import pytest

from shared.core.settings import Settings
from tests.support.paths import REPO

# [text](target): the target, up to a closing parenthesis or a space (a title).
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)[^)]*\)")
# A path into the repository, as prose names one: a top-level folder, then path characters.
TOP_FOLDERS = ("shared", "functions", "tools", "tests", "docs", "terraform", "benchmarks")
PATH = re.compile(r"(?<![\w./-])((?:" + "|".join(TOP_FOLDERS) + r")/[\w./-]*)")
# A dotted name of one of our packages: shared.core.settings.Settings, tools.stack.cli ...
MODULE = re.compile(r"(?<![\w.])((?:shared|tools)(?:\.[A-Za-z_]\w*)+)")
# `make dev` in prose, or `make dev` opening a line of a shell block.
MAKE_TARGET = re.compile(r"(?:`|^\s*)make (?:-s )?([a-z][a-z-]*)", re.MULTILINE)
# The files whose text is checked for names: docs, code, build files.
CHECKED_SUFFIXES = {".md", ".py", ".tf", ".yaml", ".toml", ".txt", ".rules"}
CHECKED_NAMES = frozenset({"Makefile", "run"})  # build files without a suffix (.ci/run)


@cache
def tracked_files() -> list[Path]:
    """The files git tracks (or, outside a git checkout, every file not in a build folder)."""
    try:
        names = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard"],  # noqa: S607
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        skipped = {".git", ".venv", ".venv-checkov", "build", "dist", ".dev", "node_modules"}
        return sorted(p for p in REPO.rglob("*") if p.is_file() and not skipped & set(p.parts))
    return sorted(REPO / name for name in names if (REPO / name).is_file())


def files(suffixes: set[str], names: frozenset[str] = frozenset()) -> list[Path]:
    """The tracked files with one of `suffixes`, or named one of `names`."""
    return [path for path in tracked_files() if path.suffix in suffixes or path.name in names]


def prose(path: Path) -> str:
    """What people read in `path`: a doc whole; of Python code, its docstrings and comments
    (its string literals are data, e.g. a test's made-up file names)."""
    text = path.read_text()
    if path.suffix != ".py":
        return text
    tree = ast.parse(text)
    parts = [
        ast.get_docstring(node, clean=False) or ""
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
    ]
    tokens = tokenize.generate_tokens(io.StringIO(text).readline)
    parts += [token.string for token in tokens if token.type == tokenize.COMMENT]
    return "\n".join(parts)


def _id(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def _is_url(target: str) -> bool:
    return bool(re.match(r"^[a-z][a-z0-9+.-]*:", target)) or target.startswith("#")


@pytest.mark.parametrize("doc", files({".md"}), ids=_id)
def test_relative_links_resolve_inside_the_repository(doc: Path) -> None:
    broken = []
    for target in LINK.findall(doc.read_text()):
        if _is_url(target):
            continue
        resolved = (doc.parent / target.split("#", 1)[0]).resolve()
        if not resolved.is_relative_to(REPO) or not resolved.exists():
            broken.append(target)
    assert broken == [], f"{_id(doc)} links to what a clone does not have: {broken}"


def named_paths(text: str) -> set[str]:
    """Repository paths named in `text`; patterns with placeholders (`<name>`, `{id}`, `*`) are
    cut at the placeholder, so only their fixed part is checked."""
    found = set()
    for match in PATH.finditer(text):
        path = match.group(1).rstrip(".")
        following = text[match.end() : match.end() + 1]
        if following in "<{*":  # a pattern: functions/<name>/main.py
            path = path.rsplit("/", 1)[0] if "/" in path else path
        found.add(path)
    return found


@pytest.mark.parametrize("source", files(CHECKED_SUFFIXES, CHECKED_NAMES), ids=_id)
def test_named_paths_exist(source: Path) -> None:
    missing = sorted(p for p in named_paths(prose(source)) if not (REPO / p).exists())
    assert missing == [], f"{_id(source)} names paths that do not exist: {missing}"


@cache
def resolves(dotted: str) -> bool:
    """Whether `dotted` is a module of ours or a name inside one."""
    parts = dotted.split(".")
    for cut in range(len(parts), 1, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            if not hasattr(found, attribute):
                return False
            found = getattr(found, attribute)
        return True
    return False


@pytest.mark.parametrize("source", files(CHECKED_SUFFIXES, CHECKED_NAMES), ids=_id)
def test_named_modules_exist(source: Path) -> None:
    names = {name.rstrip(".") for name in MODULE.findall(prose(source))}
    stale = sorted(name for name in names if not resolves(name))
    assert stale == [], f"{_id(source)} names modules or objects that do not exist: {stale}"


@cache
def make_targets() -> set[str]:
    """Every target a rule of the Makefile names (`token grant: ...` names two)."""
    rules = re.findall(r"^([a-z][a-z -]*):(?!=)", (REPO / "Makefile").read_text(), re.MULTILINE)
    return {name for rule in rules for name in rule.split()}


@pytest.mark.parametrize("doc", [*files({".md"}), REPO / "Makefile"], ids=_id)
def test_make_targets_named_in_docs_exist(doc: Path) -> None:
    unknown = sorted(set(MAKE_TARGET.findall(doc.read_text())) - make_targets())
    assert unknown == [], f"{_id(doc)} names make targets the Makefile lacks: {unknown}"


def test_the_configuration_page_lists_exactly_the_settings() -> None:
    page = (REPO / "docs" / "configuration.md").read_text()
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", page))
    fields = {name.upper() for name in Settings.model_fields}
    assert fields - documented == set(), "settings docs/configuration.md does not list"
    settings_table = page.split("\n## ", 1)[0]  # the first section; later ones tell of old names
    table = {
        name
        for line in settings_table.splitlines()
        if line.startswith("| `")
        for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", line.split("|")[1])
    }
    assert table - fields == set(), "docs/configuration.md lists settings the code lacks"


def modules_table(page: str) -> set[str]:
    """The module paths in the first column of the architecture page's modules table."""
    section = page.split("## Modules", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1].strip() for line in section.splitlines() if line.startswith("| `")]
    return {row.strip("`") for row in rows if row.endswith(".py`")}


def test_the_architecture_page_has_a_row_for_every_module() -> None:
    page = (REPO / "docs" / "architecture.md").read_text()
    modules = {
        path.relative_to(REPO / "shared").as_posix()
        for path in (REPO / "shared").rglob("*.py")
        if path.name != "__init__.py"
    }
    listed = modules_table(page)
    assert modules - listed == set(), "modules docs/architecture.md does not list"
    assert listed - modules == set(), "docs/architecture.md lists modules that do not exist"


def test_the_checkers_catch_what_they_are_for() -> None:
    assert named_paths("see `shared/creations/lifecycle.py` and functions/<name>/main.py") == {
        "shared/creations/lifecycle.py",
        "functions",
    }
    assert resolves("shared.creations.lifecycle.stage_move")
    assert not resolves("shared.models.can_move")  # the module moved
    assert not resolves("shared.creations.lifecycle.move")  # no such function
    assert {"test", "token", "grant"} <= make_targets()
    assert MAKE_TARGET.findall("run `make demo`; make the POST safe\n  make -s token") == [
        "demo",
        "token",
    ]
    assert LINK.findall("[notes](../elsewhere/notes.md)") == ["../elsewhere/notes.md"]
    table = (
        "## Modules\n| `a/b.py` | x |\n| **`a/`** | y |\n| `wiring.py` | z |\n## Next\n| `c.py` |"
    )
    assert modules_table(table) == {"a/b.py", "wiring.py"}


def test_nothing_depends_on_the_folder_beside_the_repository() -> None:
    # The developers' notes sit in a `shared` folder beside the checkout; a clone lacks it.
    beside = "../" + "shared/"
    mentions = [_id(p) for p in files(CHECKED_SUFFIXES | {".txt", ""}) if beside in p.read_text()]
    assert mentions == []
