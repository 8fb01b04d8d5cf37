"""The checker's findings and summary as text."""

from __future__ import annotations

from pathlib import Path

from tools.tfcheck.check import Result
from tools.tfcheck.schema import ProviderSchema


def render(result: Result, checked_against: list[ProviderSchema], relative_to: Path) -> str:
    lines = [finding.render(relative_to) for finding in result.findings]
    against = ", ".join(f"{s.source.split('/', 1)[-1]} {s.version}" for s in checked_against)
    summary = (
        f"tfcheck: {result.files} files in {len(result.modules)} modules "
        f"({result.count('resource')} resources, {result.count('data')} data sources, "
        f"{result.count('module')} module calls) checked against "
        f"{against or 'no provider schema'}: "
    )
    count = len(result.findings)
    summary += "no findings" if count == 0 else f"{count} finding{'s' if count > 1 else ''}"
    return "\n".join([*lines, summary])
