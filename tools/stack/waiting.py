"""Waiting for something to become true, with a deadline: the one poll loop of tools and tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

DEFAULT_INTERVAL = 0.05


def wait_until(
    predicate: Callable[[], T | None],
    timeout: float,
    what: str,
    *,
    interval: float = DEFAULT_INTERVAL,
) -> T:
    """Call `predicate` until it returns something truthy, and return that.

    Between calls it sleeps `interval` seconds (never busy-spins); after `timeout` seconds it
    raises `TimeoutError` saying what did not happen. An exception from `predicate` ends the wait
    at once (a child that died, say, is not worth waiting for).
    """
    deadline = time.monotonic() + timeout
    while True:
        found = predicate()
        if found:
            return found
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"{what}: not within {timeout:g} s")
        time.sleep(min(interval, left))
