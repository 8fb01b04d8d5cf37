"""Choosing the provider: one setting (`PROVIDER`), offline unless told otherwise."""

from __future__ import annotations

from shared.providers.base import Provider
from shared.settings import Settings


def build_provider(settings: Settings) -> Provider:
    if settings.provider == "offline":
        from shared.providers.offline import OfflineProvider

        return OfflineProvider(settings)
    raise ValueError(
        f"PROVIDER={settings.provider!r} is not available in this build; use PROVIDER=offline"
    )
