"""The references inside the expressions of a parsed configuration.

python-hcl2 gives every expression as a string (`${var.x}`, `projects/${var.p}/topics/t`);
the code inside each `${...}` is scanned with quoted literals left out (so `"roles/run.invoker"`
is not read as a reference) but the templates inside them kept (`"${local.dir}/x.zip"`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

_TRAVERSAL = re.compile(
    r"(?<![\w.\-])([A-Za-z_][\w-]*)((?:\s*(?:\.[A-Za-z_][\w-]*|\.\*|\[[^\[\]]*\]))*)"
)
_STEP = re.compile(r"\.([A-Za-z_][\w-]*)|\.\*|\[[^\[\]]*\]")


@dataclass(frozen=True)
class Reference:
    """`google_service_account.push[0].email` -> root google_service_account, names
    (push, email): the attribute steps, indexes and splats left out."""

    root: str
    names: tuple[str, ...]

    def __str__(self) -> str:
        return ".".join((self.root, *self.names))


def references(value: Any) -> Iterator[Reference]:
    """Every reference in a parsed value (strings anywhere inside it, object keys included)."""
    for text in _strings(value):
        if "${" not in text:
            continue
        for code in _template_code(text):
            for match in _TRAVERSAL.finditer(code):
                names = tuple(n for n in _STEP.findall(match.group(2)) if n)
                yield Reference(match.group(1), names)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _template_code(text: str) -> list[str]:
    """The code of each `${...}` in a template, nested ones as separate pieces."""
    pieces: list[str] = []
    i = 0
    while (start := text.find("${", i)) != -1:
        if start > 0 and text[start - 1] == "$":  # `$${` is a literal `${`
            i = start + 2
            continue
        i = _expression(text, start + 2, pieces)
    return pieces


def _expression(text: str, i: int, pieces: list[str]) -> int:
    """Reads code from `i` up to its closing brace; returns the index after it."""
    code: list[str] = []
    depth = 0
    while i < len(text):
        char = text[i]
        if char == '"':
            i = _quoted(text, i + 1, pieces)
            code.append('""')
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            if depth == 0:
                i += 1
                break
            depth -= 1
        code.append(char)
        i += 1
    pieces.append("".join(code))
    return i


def _quoted(text: str, i: int, pieces: list[str]) -> int:
    """Skips a quoted literal from `i` (after its quote), reading the templates inside it."""
    while i < len(text) and text[i] != '"':
        if text[i] == "\\":
            i += 2
        elif text.startswith("${", i):
            i = _expression(text, i + 2, pieces)
        else:
            i += 1
    return i + 1
