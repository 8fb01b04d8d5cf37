"""Terraform version constraints (`>= 6.0, < 8`, `~> 7.46`): enough to tell which provider
releases a constraint admits."""

from __future__ import annotations

import re

Version = tuple[int, int, int]

_PART = re.compile(r"^\s*(=|!=|>=|<=|>|<|~>)?\s*v?(\d+(?:\.\d+){0,2})(?:-[\w.]+)?\s*$")


class ConstraintError(ValueError):
    pass


def version(text: str) -> Version:
    numbers = [int(n) for n in text.split(".")]
    numbers += [0] * (3 - len(numbers))
    return numbers[0], numbers[1], numbers[2]


def allows(constraint: str, candidate: str) -> bool:
    """Whether `candidate` (a release like 7.46.1) satisfies every part of `constraint`."""
    wanted = version(candidate)
    for part in constraint.split(","):
        match = _PART.match(part)
        if match is None:
            raise ConstraintError(f"not a version constraint: {part.strip()!r}")
        operator, written = match.group(1) or "=", match.group(2)
        bound = version(written)
        if not _holds(operator, bound, len(written.split(".")), wanted):
            return False
    return True


def _holds(operator: str, bound: Version, given_parts: int, wanted: Version) -> bool:
    if operator == "~>":
        # Only the rightmost given part may grow: ~> 7.46 is >= 7.46, < 8; ~> 7.46.1 is < 7.47.
        ceiling = (bound[0], bound[1] + 1, 0) if given_parts == 3 else (bound[0] + 1, 0, 0)
        return bound <= wanted < ceiling
    comparisons = {
        "=": wanted == bound,
        "!=": wanted != bound,
        ">": wanted > bound,
        ">=": wanted >= bound,
        "<": wanted < bound,
        "<=": wanted <= bound,
    }
    return comparisons[operator]


def other_majors(constraint: str, checked: str) -> list[int]:
    """The majors next to `checked`'s that the constraint also admits (untested releases)."""
    major = version(checked)[0]
    found = []
    if major > 0 and allows(constraint, f"{major - 1}.9999.9999"):
        found.append(major - 1)
    if allows(constraint, f"{major + 1}.0.0"):
        found.append(major + 1)
    return found
