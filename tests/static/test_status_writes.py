"""Only the state machine writes a creation's `status` (shared/creations/lifecycle.py).

Every module of shared/ and functions/ is read with `ast`: a `"status"` key in a dict display,
a `x["status"] = ...` assignment or a `dict(status=...)` call anywhere else is a write that
bypasses the transition table, so this test names it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support.paths import REPO

STATE_MACHINE = "shared/creations/lifecycle.py"
# Modules whose "status" is not a creation's, and why.
OTHER_STATUSES = {
    "shared/core/log.py": "Cloud Logging's httpRequest.status is an HTTP status code",
}


def status_writes(source: str) -> list[int]:
    """The lines of `source` that write a field named `status`."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Dict):
            lines += [node.lineno for key in node.keys if _is_status(key)]
        elif isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            lines += [
                node.lineno
                for target in targets
                if isinstance(target, ast.Subscript) and _is_status(target.slice)
            ]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "dict"
            and any(kw.arg == "status" for kw in node.keywords)
        ):
            lines.append(node.lineno)
    return sorted(lines)


def _is_status(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and node.value == "status"


def modules() -> list[Path]:
    return sorted([*(REPO / "shared").rglob("*.py"), *(REPO / "functions").rglob("*.py")])


def test_the_checker_sees_each_way_of_writing_status() -> None:
    source = "\n".join(
        [
            'a = {"status": "draft"}',
            'b["status"] = "failed"',
            'c = dict(status="canceled")',
            'd = {"progress": 1}',
            'if e["status"] == "draft": pass',
            'f = g.get("status")',
        ]
    )
    assert status_writes(source) == [1, 2, 3]


def test_the_state_machine_writes_status() -> None:
    assert status_writes((REPO / STATE_MACHINE).read_text()), "the state machine moved?"


@pytest.mark.parametrize("module", modules(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_no_other_module_writes_status(module: Path) -> None:
    name = module.relative_to(REPO).as_posix()
    if name == STATE_MACHINE or name in OTHER_STATUSES:
        return
    lines = status_writes(module.read_text())
    assert lines == [], (
        f"{name} writes `status` at line(s) {lines}: move it through "
        "shared.creations.lifecycle.stage_move, which checks the transition table"
    )
