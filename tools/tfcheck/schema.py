"""The provider schema the checker needs: for each resource and data source type, its arguments
(required or optional), its nested blocks (required, at most one, their own body) and the
attributes a reference may read. Serialised as compact JSON (cache.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class BlockSchema:
    """The body of a resource, data source, provider or nested block."""

    # argument name -> required
    arguments: dict[str, bool] = field(default_factory=dict)
    blocks: dict[str, NestedBlock] = field(default_factory=dict)
    # What `<type>.<name>.<attribute>` may read: the arguments, blocks and computed attributes.
    # Only kept for the top level (references are checked one attribute deep).
    readable: frozenset[str] = frozenset()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"a": self.arguments}
        if self.blocks:
            out["b"] = {name: block.to_json() for name, block in self.blocks.items()}
        extra = sorted(self.readable - self.arguments.keys() - self.blocks.keys())
        if extra:
            out["r"] = extra
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any], top_level: bool = False) -> BlockSchema:
        arguments = {str(k): bool(v) for k, v in data["a"].items()}
        blocks = {str(k): NestedBlock.from_json(v) for k, v in data.get("b", {}).items()}
        readable = (
            frozenset(arguments) | frozenset(blocks) | frozenset(data.get("r", []))
            if top_level
            else frozenset()
        )
        return cls(arguments, blocks, readable)


@dataclass(frozen=True)
class NestedBlock:
    body: BlockSchema
    required: bool = False
    max_one: bool = False

    def to_json(self) -> dict[str, Any]:
        out = self.body.to_json()
        if self.required:
            out["req"] = True
        if self.max_one:
            out["one"] = True
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NestedBlock:
        return cls(
            BlockSchema.from_json(data),
            required=bool(data.get("req", False)),
            max_one=bool(data.get("one", False)),
        )


@dataclass(frozen=True)
class ProviderSchema:
    """One provider at one version."""

    source: str  # registry.terraform.io/hashicorp/google
    version: str  # 7.46.1
    provider: BlockSchema
    resources: dict[str, BlockSchema]
    data_sources: dict[str, BlockSchema]

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "version": self.version,
            "provider": self.provider.to_json(),
            "resources": {k: v.to_json() for k, v in sorted(self.resources.items())},
            "data_sources": {k: v.to_json() for k, v in sorted(self.data_sources.items())},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProviderSchema:
        return cls(
            source=str(data["source"]),
            version=str(data["version"]),
            provider=BlockSchema.from_json(data["provider"]),
            resources={
                k: BlockSchema.from_json(v, top_level=True) for k, v in data["resources"].items()
            },
            data_sources={
                k: BlockSchema.from_json(v, top_level=True) for k, v in data["data_sources"].items()
            },
        )
