"""The Terraform under terraform/, read with python-hcl2 for the static tests.

No provider can be downloaded here, so `terraform validate` cannot run; these helpers give the
tests what they need instead: each module's blocks by kind, and a small resolver that follows
`local.`, `var.` (defaults) and `<resource>.<name>.<attribute>` references down to literals
where the configuration has them.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2
from hcl2.utils import SerializationOptions

from tests.support.paths import REPO

TERRAFORM_DIR = REPO / "terraform"
EVENT_FUNCTION_DIR = TERRAFORM_DIR / "modules" / "event_function"
EVENT_FUNCTION_SOURCE = "./modules/event_function"

_OPTIONS = SerializationOptions(
    with_comments=False, explicit_blocks=False, strip_string_quotes=True
)
_WHOLE_EXPRESSION = re.compile(r"^\$\{(.*)\}$", re.DOTALL)
_SEGMENT = re.compile(r'\.([A-Za-z_][A-Za-z0-9_-]*)|\["([^"]*)"\]')
_EMBEDDED = re.compile(r"\$\{")


def parse(path: Path) -> dict[str, Any]:
    """One HCL file as python-hcl2 serializes it (string literals without their quotes).

    Cached by content (python-hcl2 takes ~0.2 s a file); callers must not change the result.
    """
    return _parse_text(path.read_text())


@functools.lru_cache(maxsize=64)
def _parse_text(text: str) -> dict[str, Any]:
    return hcl2.loads(text, serialization_options=_OPTIONS)


def tf_files(directory: Path = TERRAFORM_DIR) -> list[Path]:
    """Every .tf file under `directory`, nested modules included."""
    return sorted(p for p in directory.rglob("*.tf") if ".terraform" not in p.parts)


def expression(value: Any) -> str | None:
    """The expression inside a value that is wholly `${...}`, else None (a literal)."""
    if isinstance(value, str):
        match = _WHOLE_EXPRESSION.match(value)
        if match:
            return match.group(1).strip()
    return None


class Unresolved(str):
    """An expression the resolver cannot evaluate (a function call, a conditional...)."""


@dataclass
class Module:
    """The blocks of one Terraform module (the .tf files directly in one folder)."""

    directory: Path
    resources: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    data: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    modules: dict[str, dict[str, Any]] = field(default_factory=dict)
    locals: dict[str, Any] = field(default_factory=dict)
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, directory: Path) -> Module:
        module = cls(directory)
        for path in sorted(directory.glob("*.tf")):
            module._add(parse(path))
        return module

    def _add(self, parsed: dict[str, Any]) -> None:
        for block in parsed.get("resource", []):
            for kind, named in block.items():
                for name, body in named.items():
                    self.resources[(kind, name)] = body
        for block in parsed.get("data", []):
            for kind, named in block.items():
                for name, body in named.items():
                    self.data[(kind, name)] = body
        for block in parsed.get("module", []):
            self.modules.update(block)
        for block in parsed.get("locals", []):
            self.locals.update(block)
        for block in parsed.get("variable", []):
            self.variables.update(block)
        for block in parsed.get("output", []):
            self.outputs.update(block)

    def resources_of(self, kind: str) -> dict[str, dict[str, Any]]:
        return {name: body for (k, name), body in self.resources.items() if k == kind}

    def event_functions(self) -> dict[str, dict[str, Any]]:
        """The instances of modules/event_function, by module name."""
        return {
            name: body
            for name, body in self.modules.items()
            if body.get("source") == EVENT_FUNCTION_SOURCE
        }

    # --- resolving references -------------------------------------------------------------

    def resolve(self, value: Any, depth: int = 0) -> Any:
        """`value` with every reference this module defines followed to its value."""
        if depth > 20:
            raise RecursionError(f"reference loop at {value!r}")
        if isinstance(value, dict):
            return {k: self.resolve(v, depth + 1) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v, depth + 1) for v in value]
        expr = expression(value)
        if expr is None or len(_EMBEDDED.findall(value)) != 1:
            return value
        return self._reference(expr, depth)

    def _reference(self, expr: str, depth: int) -> Any:
        head, _, rest = expr.partition(".")
        path = _path(rest) if rest else None
        if path is None:
            return Unresolved(expr)
        if head == "local" and path and path[0] in self.locals:
            return self._walk(self.locals[path[0]], path[1:], expr, depth)
        if head == "var" and path and "default" in self.variables.get(path[0], {}):
            return self._walk(self.variables[path[0]]["default"], path[1:], expr, depth)
        if len(path) >= 2 and (head, path[0]) in self.resources:
            return self._walk(self.resources[(head, path[0])], path[1:], expr, depth)
        return Unresolved(expr)

    def _walk(self, value: Any, path: list[str], expr: str, depth: int) -> Any:
        value = self.resolve(value, depth + 1)
        for key in path:
            if isinstance(value, dict) and key in value:
                value = self.resolve(value[key], depth + 1)
            else:
                return Unresolved(expr)
        return value


def _path(text: str) -> list[str] | None:
    """`a.b["c"].d` -> [a, b, c, d]; None if it is anything but a plain attribute path."""
    text = "." + text
    parts: list[str] = []
    position = 0
    for match in _SEGMENT.finditer(text):
        if match.start() != position:
            return None
        parts.append(match.group(1) or match.group(2))
        position = match.end()
    return parts if position == len(text) else None


def strings(value: Any) -> Iterator[str]:
    """Every string anywhere inside a parsed value (keys excluded)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)
