"""A video's `image` in the body and its `source_image` in the stored request (the rules only;
the lookup against real creations is tests/integration/test_video_from_image.py)."""

from __future__ import annotations

from typing import Any

import pytest

from shared.core.errors import InvalidRequest
from shared.core.settings import Settings
from shared.creations.requests import (
    SourceImage,
    StoredRequestInvalid,
    VideoRequest,
    document_of,
    stored_request,
)
from shared.intake.parsing import parse_creation_request

SOURCE = {
    "creation_id": "img1",
    "index": 1,
    "uri": "gs://bucket/media/u/img1/1-owner/1.png",
    "mime_type": "image/png",
}


class Finder:
    """Answers every lookup with SOURCE's image at the index asked, and records the lookups."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, int]] = []

    def __call__(self, image_id: str, index: int) -> SourceImage:
        self.asked.append((image_id, index))
        return SourceImage.model_validate(SOURCE | {"creation_id": image_id, "index": index})


def test_the_image_found_is_stored_with_the_video() -> None:
    finder = Finder()
    body = {"type": "video", "prompt": "closer", "image": "img1", "image_index": 1}
    request = parse_creation_request(body, Settings(), find_source_image=finder)
    assert finder.asked == [("img1", 1)]
    assert isinstance(request, VideoRequest)
    assert document_of(request)["source_image"] == SOURCE


def test_image_index_defaults_to_0_and_a_video_without_image_has_no_source() -> None:
    finder = Finder()
    parse_creation_request(
        {"type": "video", "prompt": "x", "image": "img1"}, Settings(), find_source_image=finder
    )
    plain = parse_creation_request(
        {"type": "video", "prompt": "x"}, Settings(), find_source_image=finder
    )
    assert finder.asked == [("img1", 0)]
    assert "source_image" not in document_of(plain)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "image", "prompt": "x", "image": "img1"}, "image"),
        ({"type": "image", "prompt": "x", "image_index": 0}, "image_index"),
        ({"type": "video", "prompt": "x", "image_index": 0}, "image_index"),
        ({"type": "video", "prompt": "x", "image": ""}, "image"),
        ({"type": "video", "prompt": "x", "image": "../x"}, "image"),
        ({"type": "video", "prompt": "x", "image": ["img1"]}, "image"),
        ({"type": "video", "prompt": "x", "image": "img1", "image_index": 4}, "image_index"),
        ({"type": "video", "prompt": "x", "image": "img1", "image_index": -1}, "image_index"),
        ({"type": "video", "prompt": "x", "image": "img1", "image_index": True}, "image_index"),
        ({"type": "video", "prompt": "x", "image": "img1", "count": 2}, "count"),
    ],
)
def test_a_bad_body_is_refused_before_the_image_is_looked_up(
    body: dict[str, Any], field: str
) -> None:
    finder = Finder()
    with pytest.raises(InvalidRequest) as refused:
        parse_creation_request(body, Settings(), find_source_image=finder)
    assert refused.value.message.startswith(f"{field}:"), refused.value.message
    assert finder.asked == []


def test_without_a_finder_an_image_is_refused() -> None:
    with pytest.raises(InvalidRequest, match=r"^image:"):
        parse_creation_request({"type": "video", "prompt": "x", "image": "img1"}, Settings())


VIDEO = {"prompt": "x", "model": "veo", "aspect_ratio": "16:9", "duration_seconds": 4}


@pytest.mark.parametrize(
    ("source", "field"),
    [
        (SOURCE | {"uri": "https://example.com/1.png"}, "source_image.uri"),
        (SOURCE | {"index": "1"}, "source_image.index"),
        (SOURCE | {"index": 4}, "source_image.index"),
        (SOURCE | {"mime_type": "video/mp4"}, "source_image.mime_type"),
        (SOURCE | {"creation_id": "a/b"}, "source_image.creation_id"),
        ({k: v for k, v in SOURCE.items() if k != "uri"}, "source_image.uri"),
        ("gs://bucket/x.png", "source_image"),
    ],
)
def test_a_broken_stored_source_image_fails_the_check_of_the_request(
    source: Any, field: str
) -> None:
    with pytest.raises(StoredRequestInvalid) as broken:
        stored_request("video", VIDEO | {"source_image": source})
    assert broken.value.message.startswith(f"{field}:"), broken.value.message
    assert broken.value.code == "invalid_request"


def test_a_stored_source_image_reads_back_as_written() -> None:
    request = stored_request("video", VIDEO | {"source_image": SOURCE})
    assert isinstance(request, VideoRequest)
    assert request.source_image == SourceImage.model_validate(SOURCE)
    assert document_of(request) == VIDEO | {"source_image": SOURCE}
