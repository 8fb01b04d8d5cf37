"""The checker's findings and summary as text."""

from __future__ import annotations

from pathlib import Path

from tools.tfcheck.check import Result
from tools.tfcheck.schema import ProviderSchema


def render(result: Result, checked_against: list[ProviderSchema], relative_to: Path) -> str:
    lines = [finding.render(relative_to) for finding in result.findings]
    against = ", ".join(
        sorted(f"{s.source.split('/', 1)[-1]} {s.version}" for s in checked_against)
    )
    summary = (
        f"tfcheck: {_count(result.files, 'file')} in {_count(len(result.modules), 'module')} "
        f"({_count(result.count('resource'), 'resource')}, "
        f"{_count(result.count('data'), 'data source')}, "
        f"{_count(result.count('module'), 'module call')}) checked against "
        f"{against or 'no provider schema'}: "
    )
    count = len(result.findings)
    summary += "no findings" if count == 0 else _count(count, "finding")
    return "\n".join([*lines, summary])


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"
