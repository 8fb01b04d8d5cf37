"""What every function entry point does once per process: settings, logging, its collaborators."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import TypeVar

from shared.core.log import setup_logging
from shared.core.settings import Settings, load_settings

T = TypeVar("T")


def per_process(build: Callable[[Settings], T]) -> Callable[[], T]:
    """`build(settings)` on the first call, the same object after that.

    Built on the first event, not at import: the clients need the process's settings, and an
    import-time failure would hide behind the platform's start-up error.
    """

    @lru_cache(maxsize=1)
    def built() -> T:
        settings = load_settings()
        setup_logging(settings.log_level, project=settings.gcp_project)
        return build(settings)

    return built
