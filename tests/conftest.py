"""Fixtures for every tier: an isolated environment and fresh settings per test."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from shared.core.settings import load_settings


@pytest.fixture(autouse=True)
def isolate_environment() -> Iterator[None]:
    """Each test may change os.environ and settings; both are restored afterwards."""
    saved = dict(os.environ)
    load_settings.cache_clear()
    yield
    os.environ.clear()
    os.environ.update(saved)
    load_settings.cache_clear()
