"""A Terraform module's .tf files, parsed with python-hcl2 into its top-level blocks.

python-hcl2 marks blocks (`__is_block__`), so a nested block and an argument holding an object
or a list of objects stay apart, which is what the schema checks need.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

import hcl2
from hcl2.utils import SerializationOptions

_OPTIONS = SerializationOptions(
    with_comments=False,
    explicit_blocks=True,
    strip_string_quotes=True,
    preserve_heredocs=False,
)
BLOCK_MARK = "__is_block__"
# Top-level block kinds and how many labels each has.
_LABELS = {
    "resource": 2,
    "data": 2,
    "module": 1,
    "provider": 1,
    "variable": 1,
    "output": 1,
    "locals": 0,
    "terraform": 0,
    "moved": 0,
    "import": 0,
    "removed": 0,
    "check": 1,
}


class ConfigError(Exception):
    """A .tf file python-hcl2 cannot parse."""


@dataclass(frozen=True)
class Block:
    """One top-level block: `resource "google_x" "name" {...}` is kind resource, two labels."""

    kind: str
    labels: tuple[str, ...]
    body: dict[str, Any]
    file: Path
    line: int

    @property
    def address(self) -> str:
        if self.kind == "resource":
            return ".".join(self.labels)
        if self.kind in ("data", "module", "variable", "output"):
            prefix = {"data": "data", "module": "module", "variable": "var", "output": "output"}
            return ".".join((prefix[self.kind], *self.labels))
        return " ".join((self.kind, *self.labels))


@dataclass
class Module:
    """The .tf files directly in one folder."""

    directory: Path
    files: list[Path] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)
    texts: dict[Path, str] = field(default_factory=dict)

    def of(self, kind: str) -> list[Block]:
        return [b for b in self.blocks if b.kind == kind]

    def named(self, kind: str) -> dict[tuple[str, ...], Block]:
        return {b.labels: b for b in self.of(kind)}

    @property
    def local_names(self) -> set[str]:
        return {name for b in self.of("locals") for name in b.body if not name.startswith("__")}

    @property
    def required_providers(self) -> dict[str, tuple[str, str | None, Block]]:
        """Local provider name -> (source, version constraint, the terraform block)."""
        found: dict[str, tuple[str, str | None, Block]] = {}
        for block in self.of("terraform"):
            for required in block.body.get("required_providers", []):
                for name, spec in required.items():
                    if name.startswith("__") or not isinstance(spec, dict):
                        continue
                    source = str(spec.get("source", f"hashicorp/{name}"))
                    constraint = spec.get("version")
                    found[name] = (source, None if constraint is None else str(constraint), block)
        return found

    def source_of(self, local_name: str) -> str:
        """A provider's source address, as Terraform infers it when required_providers is silent."""
        declared = self.required_providers.get(local_name)
        return declared[0] if declared else f"hashicorp/{local_name}"

    def line_of(self, block: Block, name: str) -> int:
        """The line of the first `name = ` / `name {` / `dynamic "name"` inside `block` (or the
        block's own line): good enough to point a reader at the argument."""
        lines = self.texts[block.file].splitlines()
        pattern = re.compile(rf'^\s*(?:{re.escape(name)}\s*[={{]|dynamic\s+"{re.escape(name)}")')
        for number in range(block.line, len(lines) + 1):
            if pattern.match(lines[number - 1]):
                return number
        return block.line

    def line_with(self, block: Block, text: str) -> int:
        """The first line from `block`'s own that contains `text` (or the block's line)."""
        lines = self.texts[block.file].splitlines()
        for number in range(block.line, len(lines) + 1):
            if text in lines[number - 1]:
                return number
        return block.line


def load_module(directory: Path) -> Module:
    module = Module(directory)
    for path in sorted(directory.glob("*.tf")):
        text = path.read_text()
        module.files.append(path)
        module.texts[path] = text
        module.blocks.extend(parse_file(path, text))
    return module


def parse_file(path: Path, text: str) -> list[Block]:
    try:
        parsed = hcl2.loads(text, serialization_options=_OPTIONS)
    except Exception as error:  # python-hcl2 raises lark's errors, which carry the position
        raise ConfigError(f"{path}: python-hcl2 cannot parse it: {error}") from error
    blocks: list[Block] = []
    for kind, items in parsed.items():
        depth = _LABELS.get(kind)
        if depth is None or not isinstance(items, list):
            continue
        for item in items:
            for labels, body in _unwrap(item, depth):
                blocks.append(Block(kind, labels, body, path, _line(text, kind, labels)))
    return blocks


def _unwrap(item: dict[str, Any], depth: int) -> list[tuple[tuple[str, ...], dict[str, Any]]]:
    if depth == 0:
        return [((), item)]
    out: list[tuple[tuple[str, ...], dict[str, Any]]] = []
    for label, inner in item.items():
        if label.startswith("__") or not isinstance(inner, dict):
            continue
        out.extend(((label, *rest), body) for rest, body in _unwrap(inner, depth - 1))
    return out


def _line(text: str, kind: str, labels: tuple[str, ...]) -> int:
    header = r"\s+".join([re.escape(kind)] + [rf'"?{re.escape(label)}"?' for label in labels])
    match = re.search(rf"^[ \t]*{header}\s*\{{", text, re.MULTILINE)
    return text.count("\n", 0, match.start()) + 1 if match else 1


def is_block(value: Any) -> TypeGuard[list[dict[str, Any]]]:
    """A block (one or more `name { ... }`) as python-hcl2 gives it."""
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(item, dict) and item.get(BLOCK_MARK) for item in value)
    )


def local_module_dir(module: Module, call: Block) -> Path | None:
    """The folder of a module call whose source is a local path (./ or ../), else None."""
    source = call.body.get("source")
    if isinstance(source, str) and source.startswith(("./", "../")):
        return (module.directory / source).resolve()
    return None
