"""Building the `genai.Client` from settings, in one of the two API modes.

Vertex AI (GENAI_MODE=vertex): project `GCP_PROJECT`, location `GENAI_LOCATION`, and the
credentials of the environment (Application Default Credentials: the function's service
account in production, GOOGLE_APPLICATION_CREDENTIALS locally). Gemini Developer API
(GENAI_MODE=developer): the key in GENAI_API_KEY. Every argument is passed explicitly, so
the SDK's own environment variables (GOOGLE_API_KEY, GOOGLE_CLOUD_PROJECT, ...) cannot
silently switch the mode or the project.

GENAI_BASE_URL points the SDK somewhere else than Google (the tests' local API double).
"""

from __future__ import annotations

import math

from google import genai
from google.auth.credentials import Credentials
from google.genai import types

from shared.core.settings import Settings


class GenaiConfigError(ValueError):
    """The settings cannot make a working client; raised at startup, before any job."""


def build_client(settings: Settings, *, credentials: Credentials | None = None) -> genai.Client:
    """The SDK client for `settings`. `credentials` replaces ADC (tests only)."""
    options = types.HttpOptions(
        base_url=settings.genai_base_url,
        timeout=milliseconds(settings.genai_request_timeout_seconds),
    )
    if settings.genai_mode == "vertex":
        # Project and location are explicit, so the SDK looks for credentials only at the
        # first request, not here: building the client never needs the network.
        return genai.Client(
            vertexai=True,
            project=settings.gcp_project,
            location=settings.genai_location,
            credentials=credentials,
            http_options=options,
        )
    api_key = settings.genai_api_key.get_secret_value() if settings.genai_api_key else ""
    if not api_key:
        raise GenaiConfigError("GENAI_MODE=developer needs GENAI_API_KEY (a Gemini API key)")
    return genai.Client(vertexai=False, api_key=api_key, http_options=options)


def milliseconds(seconds: float) -> int:
    """HttpOptions.timeout is whole milliseconds; never 0, which would mean no timeout."""
    return max(1, math.ceil(seconds * 1000))


def call_options(settings: Settings, seconds_left: float) -> types.HttpOptions:
    """Per-call options: the request timeout, cut to the time left before the deadline."""
    seconds = min(settings.genai_request_timeout_seconds, max(1.0, seconds_left))
    return types.HttpOptions(timeout=milliseconds(seconds))
