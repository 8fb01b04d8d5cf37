"""Only the state machine writes a creation's `status` (shared/creations/lifecycle.py).

At run time `Batch` refuses a write that sets `status` unless it says `moves_status=True`.
Here every module of shared/, functions/ and tools/ is read with `ast`: saying
`moves_status=True`, a `"status"` key in a dict display, a `x["status"] = ...` assignment,
`dict(status=...)`, `x.update(status=...)`, `x.setdefault("status", ...)` or
`dict.fromkeys([... "status" ...])` anywhere but the state machine is a write that would
bypass the transition table, so this test names it.
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
    "shared/creations/status_events.py": (
        "a status event's message attribute: the status a move reached, announced after the "
        "state machine wrote it"
    ),
    "shared/webhooks/model.py": "a webhook's delivery status (`webhook.status`)",
    "shared/webhooks/api_view.py": "a webhook's delivery status, as the API shows it",
    "shared/webhooks/records.py": (
        "a webhook's delivery status, written as `webhook.status` inside the creation's "
        "`webhook` map, never the creation's own"
    ),
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
        elif isinstance(node, ast.Call) and _writes_status(node):
            lines.append(node.lineno)
    return sorted(lines)


def _writes_status(call: ast.Call) -> bool:
    name = call.func.id if isinstance(call.func, ast.Name) else None
    method = call.func.attr if isinstance(call.func, ast.Attribute) else None
    keywords = {kw.arg: kw.value for kw in call.keywords}
    says_so = keywords.get("moves_status")
    if isinstance(says_so, ast.Constant) and says_so.value is True:
        return True
    if (name == "dict" or method == "update") and "status" in keywords:
        return True
    if method == "setdefault" and call.args and _is_status(call.args[0]):
        return True
    return method == "fromkeys" and any(
        _is_status(item) for arg in call.args[:1] for item in ast.walk(arg)
    )


def _is_status(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and node.value == "status"


def modules() -> list[Path]:
    return sorted(p for top in ("shared", "functions", "tools") for p in (REPO / top).rglob("*.py"))


def test_the_checker_sees_each_way_of_writing_status() -> None:
    source = "\n".join(
        [
            'a = {"status": "draft"}',
            'b["status"] = "failed"',
            'c = dict(status="canceled")',
            "batch.update(creation, fields, moves_status=True)",
            'fields.update(status="draft")',
            'fields.setdefault("status", "draft")',
            'fields = dict.fromkeys(["status", "error"])',
            'd = {"progress": 1}',
            'if e["status"] == "draft": pass',
            'f = g.get("status")',
            "log_fields(status=200)",
            "batch.update(creation, fields, moves_status=False)",
        ]
    )
    assert status_writes(source) == [1, 2, 3, 4, 5, 6, 7]


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
