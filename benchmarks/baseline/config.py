"""The baseline's settings, read once from the environment (the same variables as the suite's).

Standalone on purpose: nothing here imports `shared`, so the baseline is the design the suite
replaces and not the suite in another wrapper.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

# The suite's defaults, so one grant and one listener serve both stacks.
DEFAULT_PROJECT = "demo-creations"
DEFAULT_BUCKET = "demo-creations-media"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
REDIS_URL_VARIABLE = "BASELINE_REDIS_URL"
IMAGE_COST_TOKENS = 1  # the suite's default price of one image (its PRICING setting)


@dataclass(frozen=True)
class BaselineSettings:
    project: str
    media_bucket: str
    storage_emulator_host: str | None
    auth_certs_url: str
    redis_url: str
    image_side_px: int  # the suite's OFFLINE_IMAGE_LONG_SIDE_PX; square images here
    image_cost_tokens: int  # the suite's default price of one image
    lease_seconds: float
    store_max_attempts: int
    auth_clock_skew_seconds: int

    @property
    def auth_issuer(self) -> str:
        return f"https://securetoken.google.com/{self.project}"

    @property
    def auth_audience(self) -> str:
        return self.project

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> BaselineSettings:
        project = env.get("GCP_PROJECT") or env.get("GOOGLE_CLOUD_PROJECT") or DEFAULT_PROJECT
        return cls(
            project=project,
            media_bucket=env.get("MEDIA_BUCKET") or DEFAULT_BUCKET,
            storage_emulator_host=env.get("STORAGE_EMULATOR_HOST") or None,
            auth_certs_url=env.get("AUTH_CERTS_URL", ""),
            redis_url=env.get(REDIS_URL_VARIABLE) or DEFAULT_REDIS_URL,
            image_side_px=int(env.get("OFFLINE_IMAGE_LONG_SIDE_PX") or 256),
            image_cost_tokens=IMAGE_COST_TOKENS,
            lease_seconds=float(env.get("LEASE_SECONDS") or 540),
            store_max_attempts=int(env.get("STORE_MAX_ATTEMPTS") or 25),
            auth_clock_skew_seconds=int(env.get("AUTH_CLOCK_SKEW_SECONDS") or 30),
        )


@cache
def settings() -> BaselineSettings:
    """This process's settings (read on first use: after a fork, as before it, they agree)."""
    return BaselineSettings.from_env(os.environ)
