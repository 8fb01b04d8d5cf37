from __future__ import annotations

from typing import Any

import pytest

from shared.core.errors import InvalidRequest
from shared.core.settings import Pricing, Settings
from shared.creations.lifecycle import TRANSITIONS, can_move
from shared.creations.requests import ReelRequest, document_of
from shared.intake.parsing import parse_creation_request
from shared.money.pricing import creation_cost


@pytest.fixture
def settings() -> Settings:
    return Settings(
        pricing=Pricing(image_tokens_per_image=2, video_tokens_per_second=3, reel_tokens=5)
    )


def test_image_request_gets_defaults_and_trimmed_prompt(settings: Settings) -> None:
    request = parse_creation_request({"type": "image", "prompt": "  a red fox  "}, settings)
    assert document_of(request) == {
        "prompt": "a red fox",
        "model": settings.default_image_model,
        "aspect_ratio": "1:1",
        "count": 1,
    }


def test_video_request_gets_default_duration_and_keeps_options(settings: Settings) -> None:
    request = parse_creation_request(
        {
            "type": "video",
            "prompt": "waves",
            "negative_prompt": "boats",
            "seed": 7,
            "aspect_ratio": "9:16",
        },
        settings,
    )
    assert document_of(request) == {
        "prompt": "waves",
        "model": settings.default_video_model,
        "aspect_ratio": "9:16",
        "duration_seconds": 8,
        "negative_prompt": "boats",
        "seed": 7,
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"prompt": "x"}, "type"),
        ({"type": "audio", "prompt": "x"}, "type"),
        ({"type": "image"}, "prompt"),
        ({"type": "image", "prompt": "   "}, "prompt"),
        ({"type": "image", "prompt": "x" * 2001}, "prompt"),
        ({"type": "image", "prompt": 5}, "prompt"),
        ({"type": "image", "prompt": "x", "negative_prompt": "n" * 2001}, "negative_prompt"),
        ({"type": "image", "prompt": "x", "aspect_ratio": "2:1"}, "aspect_ratio"),
        ({"type": "video", "prompt": "x", "aspect_ratio": "4:3"}, "aspect_ratio"),
        ({"type": "video", "prompt": "x", "duration_seconds": 3}, "duration_seconds"),
        ({"type": "video", "prompt": "x", "duration_seconds": 9}, "duration_seconds"),
        ({"type": "video", "prompt": "x", "duration_seconds": "8"}, "duration_seconds"),
        ({"type": "image", "prompt": "x", "duration_seconds": 8}, "duration_seconds"),
        ({"type": "image", "prompt": "x", "count": 5}, "count"),
        ({"type": "image", "prompt": "x", "count": True}, "count"),
        ({"type": "video", "prompt": "x", "count": 1}, "count"),
        ({"type": "image", "prompt": "x", "seed": -1}, "seed"),
        ({"type": "image", "prompt": "x", "seed": 2**32}, "seed"),
        ({"type": "image", "prompt": "x", "model": "no-such-model"}, "model"),
        ({"type": "image", "prompt": "x", "model": "veo-3.0-generate-001"}, "model"),
        ({"type": "image", "prompt": "x", "style": "noir"}, "style"),
        # half a UTF-16 pair, as `"\ud800"` in JSON parses: not text, not storable
        ({"type": "image", "prompt": "a \ud800 cat"}, "prompt"),
        ({"type": "image", "prompt": "x", "negative_prompt": "\udfff"}, "negative_prompt"),
        ({"type": "image", "prompt": "x", "\ud800": 1}, "body"),
        ({"type": "image", "prompt": "x", "style": {"a": ["ok", "\ud800"]}}, "style.a[1]"),
    ],
)
def test_invalid_request_names_the_field(
    body: dict[str, Any], field: str, settings: Settings
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_creation_request(body, settings)
    assert caught.value.message.startswith(f"{field}:"), caught.value.message


def test_a_body_nested_as_deep_as_json_goes_is_refused_not_a_crash(settings: Settings) -> None:
    # The surrogate check walks the whole body before the rules do; it must not recurse.
    deep: Any = "x"
    for _ in range(50_000):
        deep = [deep]
    with pytest.raises(InvalidRequest, match=r"^prompt:"):
        parse_creation_request({"type": "image", "prompt": deep}, settings)


@pytest.mark.parametrize("body", [[1, 2], "text", 3, None])
def test_a_body_that_is_not_an_object_is_rejected(body: Any, settings: Settings) -> None:
    with pytest.raises(InvalidRequest, match="body"):
        parse_creation_request(body, settings)


def test_cost_follows_the_pricing_table(settings: Settings) -> None:
    image = parse_creation_request({"type": "image", "prompt": "x", "count": 3}, settings)
    video = parse_creation_request(
        {"type": "video", "prompt": "x", "duration_seconds": 5}, settings
    )
    reel = ReelRequest(clips=["a", "b"], sources=["gs://b/a", "gs://b/b"], duration_seconds=8.0)
    assert creation_cost(image, settings) == 6
    assert creation_cost(video, settings) == 15
    assert creation_cost(reel, settings) == 5


def test_status_only_moves_forward() -> None:
    assert can_move("pending", "processing")
    assert can_move("pending", "canceled")
    assert can_move("processing", "draft")
    assert not can_move("processing", "pending")
    assert not can_move("processing", "canceled")
    for final in ("draft", "failed", "canceled"):
        assert not any(can_move(final, other) for other in TRANSITIONS)


def test_settings_refuse_a_default_model_that_is_not_allowed() -> None:
    with pytest.raises(ValueError, match="default image model"):
        Settings(default_image_model="veo-3.0-generate-001")


def test_a_model_can_have_its_own_unit_price() -> None:
    settings = Settings(pricing=Pricing(model_unit_tokens={"veo-3.0-generate-001": 4}))
    premium = parse_creation_request(
        {"type": "video", "prompt": "x", "duration_seconds": 5, "model": "veo-3.0-generate-001"},
        settings,
    )
    standard = parse_creation_request(
        {"type": "video", "prompt": "x", "duration_seconds": 5}, settings
    )
    assert creation_cost(premium, settings) == 20
    assert creation_cost(standard, settings) == 5
