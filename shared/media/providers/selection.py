"""Choosing the provider: one setting (`PROVIDER`), offline unless told otherwise.

Each provider is imported only when chosen, so a function never loads an SDK it does not use.
A provider that cannot work with the settings raises here, when the function starts.
"""

from __future__ import annotations

from typing import assert_never

from shared.core.settings import Settings
from shared.media.providers.base import Provider


def build_provider(settings: Settings) -> Provider:
    if settings.provider == "offline":
        from shared.media.providers.offline import OfflineProvider

        return OfflineProvider(settings)
    if settings.provider == "genai":
        from shared.media.providers.genai import GenaiProvider

        return GenaiProvider(settings)
    assert_never(settings.provider)  # Settings admits only the providers above
