"""Terraform's own part of a configuration, as schemas the checks read like a provider's: the
meta-arguments of resources, data sources and module calls, `lifecycle`, `variable` and
`output` blocks, dynamic blocks, and the built-in provider's `terraform_data`."""

from __future__ import annotations

from tools.tfcheck.schema import BlockSchema, NestedBlock


def _conditions() -> NestedBlock:
    return NestedBlock(BlockSchema({"condition": True, "error_message": True}))


# Terraform's own arguments and blocks, checked like a provider's.
LIFECYCLE = BlockSchema(
    {
        "create_before_destroy": False,
        "prevent_destroy": False,
        "ignore_changes": False,
        "replace_triggered_by": False,
    },
    {"precondition": _conditions(), "postcondition": _conditions()},
)
RESOURCE_META = BlockSchema(
    {"count": False, "for_each": False, "provider": False, "depends_on": False},
    {"lifecycle": NestedBlock(LIFECYCLE, max_one=True)},
)
DATA_META = BlockSchema(
    {"count": False, "for_each": False, "provider": False, "depends_on": False},
    {
        "lifecycle": NestedBlock(
            BlockSchema({}, {"precondition": _conditions(), "postcondition": _conditions()}),
            max_one=True,
        )
    },
)
# A resource's provisioner and connection blocks: allowed, their bodies not checked (none used).
UNCHECKED_BLOCKS = {"provisioner", "connection"}
MODULE_META = {"source", "version", "count", "for_each", "providers", "depends_on"}
VARIABLE = BlockSchema(
    {
        "type": False,
        "default": False,
        "description": False,
        "sensitive": False,
        "nullable": False,
        "ephemeral": False,
    },
    {"validation": _conditions()},
)
OUTPUT = BlockSchema(
    {
        "value": True,
        "description": False,
        "sensitive": False,
        "depends_on": False,
        "ephemeral": False,
    },
    {"precondition": _conditions()},
)
# Resource types of Terraform's built-in provider.
BUILTIN_RESOURCES = {
    "terraform_data": BlockSchema(
        {"input": False, "triggers_replace": False},
        readable=frozenset({"id", "input", "output", "triggers_replace"}),
    ),
}
DYNAMIC_KEYS = {"for_each", "iterator", "labels", "content"}
# Roots of expressions that are not references to declarations.
NOT_DECLARATIONS = {"each", "count", "path", "self", "terraform"}
