"""The checks `terraform validate` would make with the providers at hand, from their schema.

For every module (the root and each local module it calls): resource and data source types
exist; arguments and blocks exist at every depth, blocks are written as blocks and arguments as
arguments, required ones are present and at-most-one blocks are not repeated; module calls pass
only the module's variables and all its required ones; references name declared variables,
locals, resources, data sources, modules and module outputs (and attributes the type has); the
provider constraints admit the checked release and no other major.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.tfcheck import constraints
from tools.tfcheck.config import (
    Block,
    Module,
    is_block,
    load_module,
    local_module_dir,
    parse_file,
)
from tools.tfcheck.findings import Finding, suggestion
from tools.tfcheck.language import (
    BUILTIN_RESOURCES,
    DATA_META,
    DYNAMIC_KEYS,
    MODULE_META,
    NOT_DECLARATIONS,
    OUTPUT,
    RESOURCE_META,
    UNCHECKED_BLOCKS,
    VARIABLE,
)
from tools.tfcheck.pins import pin_for
from tools.tfcheck.references import Reference, references
from tools.tfcheck.schema import BlockSchema, ProviderSchema

# Source address -> that provider's schema, or None when nothing is pinned for it.
SchemaSource = Callable[[str], ProviderSchema | None]


@dataclass
class _ModuleCheck:
    module: Module
    schemas: SchemaSource
    children: dict[str, Module]  # module call name -> the called local module
    findings: list[Finding] = field(default_factory=list)

    def emit(self, block: Block, where: str, message: str) -> None:
        name = where.rsplit(".", 1)[-1] if where else ""
        line = self.module.line_of(block, name) if name else block.line
        self.findings.append(Finding(block.file, line, block.address, where, message))

    # --- providers ------------------------------------------------------------------------

    def provider_of(self, block: Block) -> tuple[str, ProviderSchema | None]:
        """The local provider name a resource or data source uses, and that provider's schema."""
        meta = block.body.get("provider")
        if isinstance(meta, str):
            local = meta.removeprefix("${").removesuffix("}").split(".")[0]
        else:
            local = block.labels[0].split("_")[0]
        return local, self.schemas(self.module.source_of(local))

    def check_constraints(self) -> None:
        for local, (source, constraint, block) in self.module.required_providers.items():
            pin = pin_for(source)
            if pin is None:
                continue
            where = f"required_providers.{local}"
            checked = pin.provider_version
            major, minor, _ = constraints.version(checked)
            narrow = f"`~> {major}.{minor}`"
            if constraint is None:
                self.emit(
                    block, where, f"no version constraint: tfcheck checks {checked}; use {narrow}"
                )
                continue
            try:
                if not constraints.allows(constraint, checked):
                    self.emit(
                        block,
                        where,
                        f"`{constraint}` excludes {checked}, the release tfcheck checks against "
                        f"(tools/tfcheck/pins.py)",
                    )
                elif others := constraints.other_majors(constraint, checked):
                    majors = ", ".join(f"{m}.x" for m in others)
                    self.emit(
                        block,
                        where,
                        f"`{constraint}` also admits {majors}, which tfcheck does not check "
                        f"(it checks {checked}): use {narrow}",
                    )
            except constraints.ConstraintError as error:
                self.emit(block, where, str(error))

    def check_lock_file(self) -> None:
        """Once committed, the lock file must hold releases of the major that was checked."""
        path = self.module.directory / ".terraform.lock.hcl"
        if not path.is_file():
            return
        text = path.read_text()
        self.module.texts[path] = text
        for block in parse_file(path, text):
            pin = pin_for(block.labels[0]) if block.kind == "provider" else None
            locked = block.body.get("version")
            if pin is None or not isinstance(locked, str):
                continue
            if constraints.version(locked)[0] != constraints.version(pin.provider_version)[0]:
                self.emit(
                    block,
                    "version",
                    f"locks {locked}, not the major of {pin.provider_version} that tfcheck "
                    f"checks (tools/tfcheck/pins.py)",
                )

    def check_provider_blocks(self) -> None:
        for block in self.module.of("provider"):
            schema = self.schemas(self.module.source_of(block.labels[0]))
            if schema is None:
                continue
            body = BlockSchema(
                {**schema.provider.arguments, "alias": False}, schema.provider.blocks
            )
            self.check_body(block, block.body, body, "")

    # --- resources and data sources -----------------------------------------------------------

    def check_resources(self) -> None:
        for kind, meta in (("resource", RESOURCE_META), ("data", DATA_META)):
            for block in self.module.of(kind):
                schema = self.type_schema(block)
                if schema is None:
                    continue
                merged = BlockSchema(
                    {**schema.arguments, **meta.arguments}, {**schema.blocks, **meta.blocks}
                )
                body = block.body
                if kind == "resource":
                    body = {
                        k: v
                        for k, v in body.items()
                        if k not in UNCHECKED_BLOCKS or k in schema.arguments or k in schema.blocks
                    }
                self.check_body(block, body, merged, "")

    def type_schema(self, block: Block, report: bool = True) -> BlockSchema | None:
        type_name = block.labels[0]
        if block.kind == "resource" and type_name in BUILTIN_RESOURCES:
            return BUILTIN_RESOURCES[type_name]
        local, provider = self.provider_of(block)
        if provider is None:
            if report:
                source = self.module.source_of(local)
                self.emit(
                    block,
                    "",
                    f"no schema is pinned for provider `{source}` (tools/tfcheck/pins.py), "
                    f"so `{type_name}` cannot be checked",
                )
            return None
        types = provider.resources if block.kind == "resource" else provider.data_sources
        if type_name in types:
            return types[type_name]
        if report:
            what = "resource" if block.kind == "resource" else "data source"
            hint = suggestion(type_name, types)
            beta = self.schemas("hashicorp/google-beta") if local == "google" else None
            if beta is not None:
                beta_types = beta.resources if block.kind == "resource" else beta.data_sources
                if type_name in beta_types:
                    hint = " (it is in google-beta: set `provider = google-beta`)"
            self.emit(
                block,
                "",
                f"no {what} type `{type_name}` in {provider.source} {provider.version}{hint}",
            )
        return None

    def check_body(
        self, block: Block, body: dict[str, Any], schema: BlockSchema, path: str
    ) -> None:
        present: set[str] = set()
        for key, value in body.items():
            if key.startswith("__"):
                continue
            where = f"{path}.{key}" if path else key
            if key == "dynamic" and isinstance(value, list):
                present |= self.check_dynamic(block, value, schema, path)
            elif key in schema.arguments:
                present.add(key)
                if is_block(value):
                    self.emit(
                        block, where, f"`{key}` is an argument, not a block: write `{key} = ...`"
                    )
            elif key in schema.blocks:
                present.add(key)
                nested = schema.blocks[key]
                if not is_block(value):
                    self.emit(
                        block,
                        where,
                        f"`{key}` is a block, not an argument: write `{key} {{ ... }}`",
                    )
                    continue
                if nested.max_one and len(value) > 1:
                    self.emit(
                        block, where, f"at most one `{key}` block is allowed, found {len(value)}"
                    )
                for item in value:
                    self.check_body(block, item, nested.body, where)
            else:
                known = [*schema.arguments, *schema.blocks]
                what = "block" if is_block(value) else "argument"
                self.emit(block, where, f"no {what} `{key}` here{suggestion(key, known)}")
        for name, required in schema.arguments.items():
            if required and name not in present:
                self.emit(block, path, f"the required argument `{name}` is missing")
        for name, nested in schema.blocks.items():
            if nested.required and name not in present:
                self.emit(block, path, f"the required block `{name}` is missing")

    def check_dynamic(
        self, block: Block, value: list[dict[str, Any]], schema: BlockSchema, path: str
    ) -> set[str]:
        """`dynamic "x" { for_each ...; content {...} }`: x must be a block; its content is
        checked as one. How many it makes is only known at plan time: not counted."""
        present = set()
        for item in value:
            for label, dynamic in item.items():
                if label.startswith("__") or not isinstance(dynamic, dict):
                    continue
                where = f"{path}.{label}" if path else label
                nested = schema.blocks.get(label)
                if nested is None:
                    if label in schema.arguments:
                        self.emit(
                            block,
                            where,
                            f"`{label}` is an argument, not a block: it cannot be dynamic",
                        )
                    else:
                        hint = suggestion(label, schema.blocks)
                        self.emit(block, where, f"no block `{label}` here{hint}")
                    continue
                present.add(label)
                for key in dynamic:
                    if not key.startswith("__") and key not in DYNAMIC_KEYS:
                        self.emit(
                            block,
                            where,
                            f"no argument `{key}` in a dynamic block"
                            f"{suggestion(key, DYNAMIC_KEYS)}",
                        )
                contents = dynamic.get("content")
                if not is_block(contents):
                    self.emit(block, where, "a dynamic block needs one `content` block")
                    continue
                for content in contents:
                    self.check_body(block, content, nested.body, where)
        return present

    # --- variables, outputs, module calls ----------------------------------------------------

    def check_declarations(self) -> None:
        for block in self.module.of("variable"):
            self.check_body(block, block.body, VARIABLE, "")
        for block in self.module.of("output"):
            self.check_body(block, block.body, OUTPUT, "")

    def check_module_calls(self) -> None:
        for block in self.module.of("module"):
            if "source" not in block.body:
                self.emit(block, "", "the required argument `source` is missing")
            child = self.children.get(block.labels[0])
            if child is None:
                continue
            variables = {b.labels[0]: b for b in child.of("variable")}
            for key in block.body:
                if key.startswith("__") or key in MODULE_META:
                    continue
                if key not in variables:
                    hint = suggestion(key, variables)
                    self.emit(
                        block, key, f"{_relative(child.directory)} has no variable `{key}`{hint}"
                    )
            for name, variable in variables.items():
                if "default" not in variable.body and name not in block.body:
                    self.emit(block, "", f"the module's required variable `{name}` is not set")

    # --- references ---------------------------------------------------------------------------

    def check_references(self) -> None:
        declared = _Declared.of(self.module, self.children)
        for block in self.module.blocks:
            # moved/import/removed name addresses, not values; a check block scopes data of its own.
            if block.kind in ("terraform", "moved", "import", "removed", "check"):
                continue
            body = block.body
            if block.kind == "variable":
                body = {k: v for k, v in body.items() if k != "type"}
            for ref in references(body):
                message = self.reference_problem(ref, declared)
                if message:
                    line = self.module.line_with(block, f"{ref.root}.{ref.names[0]}")
                    finding = Finding(block.file, line, block.address, "", f"`{ref}`: {message}")
                    self.findings.append(finding)

    def reference_problem(self, ref: Reference, declared: _Declared) -> str | None:
        root, names = ref.root, ref.names
        if not names or root in NOT_DECLARATIONS:
            return None
        if root == "var":
            if names[0] not in declared.variables:
                hint = suggestion(names[0], declared.variables)
                return f"no variable `{names[0]}` is declared{hint}"
        elif root == "local":
            if names[0] not in declared.locals:
                return f"no local `{names[0]}` is defined{suggestion(names[0], declared.locals)}"
        elif root == "module":
            return declared.module_problem(names)
        elif root == "data":
            if len(names) >= 2:
                return self.resource_problem(
                    ("data", *names[:2]), names[2:], declared.data, declared
                )
        elif root in declared.resource_types or self.looks_like_resource_type(root):
            return self.resource_problem((root, names[0]), names[1:], declared.resources, declared)
        return None

    def looks_like_resource_type(self, root: str) -> bool:
        prefixes = {*self.module.required_providers, "google", "google-beta"}
        return root in BUILTIN_RESOURCES or any(root.startswith(f"{p}_") for p in prefixes)

    def resource_problem(
        self,
        address: tuple[str, ...],
        rest: tuple[str, ...],
        table: dict[tuple[str, str], Block],
        declared: _Declared,
    ) -> str | None:
        key = (address[-2], address[-1])
        block = table.get(key)
        if block is None:
            prefix = "data." if address[0] == "data" else ""
            known = [prefix + ".".join(k) for k in table]
            what = "data source" if prefix else "resource"
            name = prefix + ".".join(key)
            return f"no {what} `{name}` is declared in this module{suggestion(name, known)}"
        if not rest:
            return None
        schema = self.type_schema(block, report=False)
        if schema is None or not schema.readable or rest[0] in schema.readable:
            return None
        hint = suggestion(rest[0], schema.readable)
        return f"`{block.labels[0]}` has no attribute `{rest[0]}`{hint}"


@dataclass(frozen=True)
class _Declared:
    variables: set[str]
    locals: set[str]
    resources: dict[tuple[str, str], Block]
    data: dict[tuple[str, str], Block]
    modules: set[str]
    outputs: dict[str, set[str]]  # of the local modules called

    @property
    def resource_types(self) -> set[str]:
        return {k[0] for k in self.resources}

    @classmethod
    def of(cls, module: Module, children: dict[str, Module]) -> _Declared:
        return cls(
            variables={b.labels[0] for b in module.of("variable")},
            locals=module.local_names,
            resources={(b.labels[0], b.labels[1]): b for b in module.of("resource")},
            data={(b.labels[0], b.labels[1]): b for b in module.of("data")},
            modules={b.labels[0] for b in module.of("module")},
            outputs={
                name: {b.labels[0] for b in child.of("output")} for name, child in children.items()
            },
        )

    def module_problem(self, names: tuple[str, ...]) -> str | None:
        if names[0] not in self.modules:
            hint = suggestion(names[0], self.modules)
            return f"no module `{names[0]}` is called in this module{hint}"
        outputs = self.outputs.get(names[0])
        if outputs is not None and len(names) > 1 and names[1] not in outputs:
            return f"module `{names[0]}` has no output `{names[1]}`{suggestion(names[1], outputs)}"
        return None


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


@dataclass
class Result:
    findings: list[Finding]
    modules: list[Module]

    @property
    def files(self) -> int:
        return sum(len(m.files) for m in self.modules)

    def count(self, kind: str) -> int:
        return sum(len(m.of(kind)) for m in self.modules)


def module_dirs(root: Path) -> list[Path]:
    """Every folder under `root` (itself included) holding .tf files: the root module, its
    modules and other roots beside it (examples/...), called or not."""
    found = {p.parent.resolve() for p in root.rglob("*.tf") if ".terraform" not in p.parts}
    return sorted(found, reverse=True)


def check_tree(root: Path, schemas: SchemaSource) -> Result:
    """Checks every module under `root` and every local module they call."""
    loaded: dict[Path, Module] = {}

    def get(directory: Path) -> Module:
        if directory not in loaded:
            loaded[directory] = load_module(directory)
        return loaded[directory]

    findings: list[Finding] = []
    checked: set[Path] = set()
    pending = module_dirs(root)  # popped from the end: `root` first
    while pending:
        directory = pending.pop()
        if directory in checked:
            continue
        checked.add(directory)
        module = get(directory)
        children: dict[str, Module] = {}
        for call in module.of("module"):
            child_dir = local_module_dir(module, call)
            if child_dir is not None and child_dir.is_dir():
                children[call.labels[0]] = get(child_dir)
                pending.append(child_dir)
        findings.extend(check_module(module, schemas, children))
    return Result(sorted(set(findings)), list(loaded.values()))


def check_module(
    module: Module, schemas: SchemaSource, children: dict[str, Module]
) -> list[Finding]:
    run = _ModuleCheck(module, schemas, children)
    run.check_constraints()
    run.check_lock_file()
    run.check_provider_blocks()
    run.check_resources()
    run.check_declarations()
    run.check_module_calls()
    run.check_references()
    return run.findings
