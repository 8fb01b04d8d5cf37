"""Reads a provider's schema out of its prebuilt CDK bindings (a cdktn-provider-* wheel).

The wheel carries the provider's jsii assembly (`_jsii/provider-*.jsii.tgz`): the package's
`package.json` names the Terraform provider and version it was generated from, the `.jsii`
JSON lists every config struct's camelCase properties (optional or not, one struct or a list),
and each `lib/<resource>/index.js` maps those properties to their Terraform names in generated
`...ToHclTerraform` functions (`entry_point: {value: ...(struct.entryPoint), isBlock: false}`).
Joined, they give each resource's arguments and nested blocks.
"""

from __future__ import annotations

import json
import re
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from tools.tfcheck.schema import BlockSchema, NestedBlock, ProviderSchema


class ExtractError(Exception):
    """The wheel does not look like the CDK bindings this extractor knows."""


# One entry of a generated `attrs = {...}` map: name, value expression, isBlock, type.
_ENTRY = re.compile(
    r'^\s*"?(?P<name>[\w-]+)"?: \{\s*value: (?P<value>[^\n]*),\s*'
    r'isBlock: (?P<block>true|false),\s*type: "(?P<type>\w+)",',
    re.MULTILINE,
)
_PROPERTY = re.compile(r"(?:\bstruct\.|\bthis\._)(\w+)")
# A block's body: `fooToHclTerraform(struct.foo)`, or `cdktn.listMapperHcl(fooToHclTerraform, ...)`.
_NESTED_FUNCTION = re.compile(r"(?<![.\w])(\w+)ToHclTerraform\b")
_FUNCTION = re.compile(r"^function (\w+)ToHclTerraform\(struct\) \{$", re.MULTILINE)
_TOP_LEVEL = re.compile(r"^(?:function |class |exports\.)", re.MULTILINE)
_CLASS = re.compile(
    r"^class (\w+) extends cdktn\.(TerraformResource|TerraformDataSource|TerraformProvider) \{$",
    re.MULTILINE,
)
_TYPE_NAME = re.compile(r'static tfResourceType = "([^"]+)";')
_SYNTHESIS = re.compile(r"^\s*synthesizeHclAttributes\(\) \{$", re.MULTILINE)
# How a generated class reads an attribute: getStringAttribute('name'), new X(this, "name").
_READ = re.compile(r"""get\w*Attribute\('([\w-]+)'\)|\(this, "([\w-]+)"[,)]""")


@dataclass(frozen=True)
class _Entry:
    name: str  # the Terraform name
    prop: str | None  # the camelCase struct property it comes from
    is_block: bool
    nested: str | None  # the struct name of a block's body


@dataclass
class _Module:
    """What one lib/<dir>/index.js gives."""

    directory: str
    kind: str = ""  # TerraformResource | TerraformDataSource | TerraformProvider
    class_name: str = ""
    type_name: str = ""
    top: list[_Entry] = field(default_factory=list)
    functions: dict[str, list[_Entry]] = field(default_factory=dict)
    readable: set[str] = field(default_factory=set)


def extract(wheel: Path) -> ProviderSchema:
    """The provider schema inside a cdktn-provider-* wheel."""
    assembly: dict[str, Any] | None = None
    package: dict[str, Any] | None = None
    modules: list[_Module] = []
    for name, text in _package_files(wheel):
        if name == "package/.jsii":
            assembly = json.loads(text)
        elif name == "package/package.json":
            package = json.loads(text)
        elif name.startswith("package/lib/") and name.endswith("/index.js"):
            module = _read_module(name.split("/")[2], text)
            if module.kind:
                modules.append(module)
    if assembly is None or package is None or not modules:
        raise ExtractError(f"{wheel.name}: no jsii assembly, package.json or generated classes")
    provider = package.get("cdktn", package.get("cdktf", {})).get("provider", {})
    if "name" not in provider or "version" not in provider:
        raise ExtractError(f"{wheel.name}: package.json does not name the Terraform provider")
    return _join(assembly, modules, str(provider["name"]), str(provider["version"]))


def _package_files(wheel: Path) -> Iterator[tuple[str, str]]:
    """(name, text) of the files the extractor reads, streamed from the tgz inside the wheel."""
    with zipfile.ZipFile(wheel) as archive:
        tgz = [n for n in archive.namelist() if "/_jsii/" in n and n.endswith(".jsii.tgz")]
        if len(tgz) != 1:
            raise ExtractError(f"{wheel.name}: expected one _jsii/*.jsii.tgz, found {tgz}")
        with archive.open(tgz[0]) as raw:
            yield from _tar_texts(raw)


def _tar_texts(raw: IO[bytes]) -> Iterator[tuple[str, str]]:
    with tarfile.open(fileobj=raw, mode="r|gz") as tar:
        for member in tar:
            name = member.name
            wanted = name in ("package/.jsii", "package/package.json") or (
                name.startswith("package/lib/") and name.endswith("/index.js")
            )
            if not wanted or not member.isfile():
                continue
            handle = tar.extractfile(member)
            if handle is not None:
                yield name, handle.read().decode("utf-8")


def _read_module(directory: str, text: str) -> _Module:
    # The last line is a base64 source map: megabytes no regex needs to see.
    text = text.split("\n//# sourceMappingURL=", 1)[0]
    module = _Module(directory)
    starts = [m.start() for m in _TOP_LEVEL.finditer(text)] + [len(text)]
    for match in _FUNCTION.finditer(text):
        end = next(s for s in starts if s > match.start())
        module.functions[match.group(1)] = _entries(text[match.end() : end])
    found = _CLASS.search(text)
    if found is None:
        return module
    body = text[found.end() : next(s for s in starts if s > found.start())]
    type_name = _TYPE_NAME.search(body)
    synthesis = _SYNTHESIS.search(body)
    if type_name is None or synthesis is None:
        return module
    module.class_name, module.kind, module.type_name = found.group(1), found.group(2), type_name[1]
    module.top = _entries(body[synthesis.end() :])
    module.readable = {a or b for a, b in _READ.findall(body[: synthesis.start()])}
    return module


def _entries(body: str) -> list[_Entry]:
    entries = []
    for match in _ENTRY.finditer(body):
        value = match["value"]
        prop = _PROPERTY.search(value)
        nested = _NESTED_FUNCTION.findall(value)
        entries.append(
            _Entry(
                name=match["name"],
                prop=prop.group(1) if prop else None,
                is_block=match["block"] == "true",
                nested=nested[-1] if nested else None,
            )
        )
    return entries


# --- joining the JS with the jsii assembly ------------------------------------------------


class _Structs:
    """The assembly's config structs, by source file and name."""

    def __init__(self, assembly: dict[str, Any]) -> None:
        self._by_file: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        for spec in assembly["types"].values():
            if spec.get("kind") != "interface" or not spec.get("datatype"):
                continue
            filename = spec.get("locationInModule", {}).get("filename", "")
            props = {p["name"]: p for p in spec.get("properties", [])}
            self._by_file[(filename, spec["name"])] = props

    def properties(self, directory: str, struct: str) -> dict[str, dict[str, Any]]:
        return self._by_file.get((f"src/{directory}/index.ts", struct), {})


def _join(
    assembly: dict[str, Any], modules: list[_Module], source: str, version: str
) -> ProviderSchema:
    structs = _Structs(assembly)
    provider: BlockSchema | None = None
    resources: dict[str, BlockSchema] = {}
    data_sources: dict[str, BlockSchema] = {}
    for module in modules:
        block = _block(structs, module, module.top, f"{module.class_name}Config", set())
        block = BlockSchema(block.arguments, block.blocks, frozenset(module.readable))
        if module.kind == "TerraformProvider":
            provider = block
        elif module.kind == "TerraformDataSource":
            data_sources[module.type_name] = block
        else:
            resources[module.type_name] = block
    if provider is None:
        raise ExtractError("no provider configuration class")
    return ProviderSchema(source, version, provider, resources, data_sources)


def _block(
    structs: _Structs, module: _Module, entries: list[_Entry], struct: str, seen: set[str]
) -> BlockSchema:
    props = structs.properties(module.directory, struct)
    arguments: dict[str, bool] = {}
    blocks: dict[str, NestedBlock] = {}
    for entry in entries:
        # A property whose name clashes with the construct's own members gets `Attribute`
        # appended in the assembly (cloudbuild_trigger's `build` is `buildAttribute`).
        prop = props.get(entry.prop or "") or props.get(f"{entry.prop}Attribute", {})
        # jsii leaves `optional` out of a required property.
        required = bool(prop) and not prop.get("optional", False)
        if not entry.is_block:
            arguments[entry.name] = required
            continue
        if entry.nested is None or entry.nested in seen:
            body = BlockSchema()
        else:
            nested_struct = entry.nested[0].upper() + entry.nested[1:]
            body = _block(
                structs,
                module,
                module.functions.get(entry.nested, []),
                nested_struct,
                seen | {entry.nested},
            )
        # A block of at most one is a plain struct in the assembly; a list or set block is an
        # array (or a token standing for one).
        max_one = "fqn" in prop.get("type", {})
        blocks[entry.name] = NestedBlock(body, required=required, max_one=max_one)
    return BlockSchema(arguments, blocks)
