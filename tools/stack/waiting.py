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


def wait_for(
    read: Callable[[], T],
    done: Callable[[T], bool],
    timeout: float,
    what: str,
    *,
    interval: float = DEFAULT_INTERVAL,
) -> T:
    """Call `read` until `done` holds for what it returned, and return that.

    As `wait_until`, but the `TimeoutError` also says what was read last: the state a failed
    wait left behind is what its reader needs to see.
    """
    seen: list[T] = []

    def reached() -> tuple[T] | None:
        seen[:] = [value := read()]
        return (value,) if done(value) else None

    try:
        (value,) = wait_until(reached, timeout, what, interval=interval)
    except TimeoutError as exc:
        last = repr(seen[0]) if seen else "nothing"
        raise TimeoutError(f"{exc}; last seen: {last}") from None
    return value
