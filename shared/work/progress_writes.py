"""Progress reports thinned out to what a document can take: monotonic, about one write a second."""

from __future__ import annotations

import time
from collections.abc import Callable

from shared.core.log import get_logger
from shared.creations.progress import working_percent

logger = get_logger(__name__)


class ThrottledProgress:
    """Calls `write(percent)` only when progress went up and `min_interval` has passed since
    the last write, or, for the first, since the work began (when this was made).

    Production Firestore sustains about one write a second per document, and listeners need
    no more. A job that is done within the interval writes no progress at all: its move to
    `draft` writes 100 (one write to finish). A failed write is logged and skipped: progress
    is advisory, the result is not.
    """

    def __init__(
        self,
        write: Callable[[int], object],
        *,
        min_interval_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._write = write
        self._interval = min_interval_seconds
        self._clock = clock
        self._written = -1
        self._last_at = clock()  # the work begins now: the first write waits one interval

    def __call__(self, percent: int) -> None:
        percent = working_percent(percent)
        now = self._clock()
        if percent <= self._written or now - self._last_at < self._interval:
            return
        try:
            self._write(percent)
        except Exception as exc:  # advisory: never fail the work over a progress write
            logger.warning(f"progress write skipped: {type(exc).__name__}: {exc}")
            return
        self._written = percent
        self._last_at = now
