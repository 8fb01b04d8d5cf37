"""The google-genai provider's pure decisions: model families, modes, error mapping, setup."""

from __future__ import annotations

from typing import Any

import pytest
from google.genai import errors as genai_errors
from pydantic import SecretStr

from shared.core.settings import Settings
from shared.media.providers.base import (
    InvalidGenerationRequest,
    ProviderPermanent,
    ProviderTransient,
    SafetyBlocked,
)
from shared.media.providers.genai import GenaiProvider
from shared.media.providers.genai.client import GenaiConfigError, build_client
from shared.media.providers.genai.errors import from_api_error, from_operation_error
from shared.media.providers.genai.models import family_of, unsupported_models
from shared.media.providers.genai.provider import veo_writes_to_bucket
from shared.media.providers.selection import build_provider


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("veo-3.0-fast-generate-001", "veo"),
        ("veo-2.0-generate-001", "veo"),
        ("imagen-4.0-generate-001", "imagen"),
        ("gemini-2.5-flash-image", "gemini_image"),
        ("gemini-2.5-flash-image-preview", "gemini_image"),
        ("publishers/google/models/imagen-4.0-ultra-generate-001", "imagen"),
        ("gemini-2.5-flash", None),
        ("dall-e-3", None),
    ],
)
def test_family_of(model: str, family: str | None) -> None:
    assert family_of(model) == family


def test_default_models_all_run_on_vertex() -> None:
    assert unsupported_models(Settings().allowed_models, "vertex") == {}


def test_developer_mode_cannot_run_veo_or_imagen() -> None:
    problems = unsupported_models(Settings().allowed_models, "developer")
    assert sorted(problems) == [
        "imagen-4.0-generate-001",
        "veo-3.0-fast-generate-001",
        "veo-3.0-generate-001",
    ]
    assert all("needs Vertex AI" in reason for reason in problems.values())


def test_a_model_allowed_for_the_wrong_kind_is_reported() -> None:
    problems = unsupported_models({"veo-3.0-generate-001": "image", "gpt": "image"}, "vertex")
    assert problems == {
        "veo-3.0-generate-001": "makes videos, not images",
        "gpt": "not a Veo, Imagen or Gemini image model",
    }


def _api_error(code: int, status: str, message: str) -> genai_errors.APIError:
    body = {"error": {"code": code, "status": status, "message": message}}
    if code >= 500:
        return genai_errors.ServerError(code, body)
    return genai_errors.ClientError(code, body)


@pytest.mark.parametrize(
    ("code", "status", "message", "mapped", "error_code"),
    [
        (429, "RESOURCE_EXHAUSTED", "Quota", ProviderTransient, "provider_unavailable"),
        (408, "DEADLINE_EXCEEDED", "slow", ProviderTransient, "provider_unavailable"),
        (500, "INTERNAL", "oops", ProviderTransient, "provider_unavailable"),
        (504, "DEADLINE_EXCEEDED", "slow", ProviderTransient, "provider_unavailable"),
        (400, "INVALID_ARGUMENT", "bad ratio", InvalidGenerationRequest, "invalid_request"),
        (400, "INVALID_ARGUMENT", "Responsible AI", SafetyBlocked, "safety_blocked"),
        (401, "UNAUTHENTICATED", "token", ProviderPermanent, "provider_error"),
        (403, "PERMISSION_DENIED", "no", ProviderPermanent, "provider_error"),
        (404, "NOT_FOUND", "model", ProviderPermanent, "provider_error"),
        (413, "", "too big", ProviderPermanent, "provider_error"),
    ],
)
def test_http_errors(
    code: int, status: str, message: str, mapped: type[Exception], error_code: str
) -> None:
    error = from_api_error(_api_error(code, status, message), "Imagen")
    assert type(error) is mapped
    assert error.code == error_code
    assert error.message.startswith("Imagen ")


@pytest.mark.parametrize(
    ("error", "mapped"),
    [
        ({"code": 3, "message": "Unsupported duration."}, InvalidGenerationRequest),
        ({"code": 3, "message": "Violates the usage guidelines."}, SafetyBlocked),
        ({"code": 13, "message": "Internal."}, ProviderTransient),
        ({"code": 8, "message": "Quota."}, ProviderTransient),
        ({"code": 7, "message": "Denied."}, ProviderPermanent),
        ({"message": "no code"}, ProviderPermanent),
    ],
)
def test_operation_errors(error: dict[str, Any], mapped: type[Exception]) -> None:
    assert type(from_operation_error(error, "Veo")) is mapped


def test_long_details_are_cut_for_people() -> None:
    error = from_operation_error({"code": 5, "message": "x" * 5000}, "Veo")
    assert len(error.message) < 400


def test_developer_mode_without_an_api_key_fails_at_startup() -> None:
    with pytest.raises(GenaiConfigError, match="GENAI_API_KEY"):
        build_client(Settings(provider="genai", genai_mode="developer", genai_api_key=None))


def test_building_the_provider_needs_no_network() -> None:
    # The unit tier blocks sockets: in Vertex mode credentials are looked up at the first call.
    assert isinstance(build_provider(Settings(provider="genai")), GenaiProvider)
    developer = Settings(provider="genai", genai_mode="developer", genai_api_key=SecretStr("k"))
    assert isinstance(build_provider(developer), GenaiProvider)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, True),  # production: the real bucket
        ({"genai_mode": "developer"}, False),  # the Developer API has no such option
        ({"storage_emulator_host": "http://127.0.0.1:1"}, False),  # Google cannot reach it
        ({"storage_emulator_host": "http://127.0.0.1:1", "genai_base_url": "http://x"}, True),
    ],
)
def test_when_veo_writes_into_the_bucket(values: dict[str, Any], expected: bool) -> None:
    # Explicit values, so a developer's exported emulator variables cannot change the answer.
    unset = {"genai_mode": "vertex", "storage_emulator_host": None, "genai_base_url": None}
    assert veo_writes_to_bucket(Settings(**(unset | values))) is expected
