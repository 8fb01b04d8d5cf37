"""A creation's `progress`: whole percents, 0-99 while it is being made, 100 only at `draft`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

MAX_WORKING: Final = 99  # 100 is written with the move to draft, never before


def working_percent(value: float) -> int:
    """`value` as the progress of unfinished work: a whole percent in 0-99."""
    return max(0, min(MAX_WORKING, int(value)))


class RisingPercent:
    """Forwards each new whole percent once, never going back (0-99): what a provider reports."""

    def __init__(self, report: Callable[[int], None]) -> None:
        self._report = report
        self._last = -1

    def __call__(self, value: float) -> None:
        percent = working_percent(value)
        if percent > self._last:
            self._last = percent
            self._report(percent)
