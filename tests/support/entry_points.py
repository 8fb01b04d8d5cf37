"""The functions-framework entry points each functions/<name>/main.py registers (read by `ast`)."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

KINDS = frozenset({"http", "cloud_event"})


@dataclass(frozen=True)
class EntryPoint:
    folder: str  # the folder under functions/
    target: str  # the decorated function's name
    kind: str  # "http" | "cloud_event"


def entry_points(main: Path) -> list[EntryPoint]:
    """The module-level functions of `main` decorated with `@functions_framework.<kind>`."""
    found = []
    for node in ast.parse(main.read_text()).body:
        if not isinstance(node, ast.FunctionDef):
            continue
        for decorator in node.decorator_list:
            if (
                isinstance(decorator, ast.Attribute)
                and isinstance(decorator.value, ast.Name)
                and decorator.value.id == "functions_framework"
                and decorator.attr in KINDS
            ):
                found.append(EntryPoint(main.parent.name, node.name, decorator.attr))
    return found
