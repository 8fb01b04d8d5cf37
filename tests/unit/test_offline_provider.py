"""The offline provider makes real, decodable media, deterministically, and fails on request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from shared.core.settings import Settings
from shared.creations.model import Job
from shared.creations.requests import ReelRequest, StoredRequestInvalid
from shared.media.probe import MediaProbeError, image_size, probe
from shared.media.providers import offline
from shared.media.providers.base import (
    EmptyResult,
    InvalidGenerationRequest,
    ProviderPermanent,
    ProviderTimeout,
    ProviderTransient,
    SafetyBlocked,
)
from shared.media.providers.offline import OfflineProvider, media_size, video_ffmpeg_args
from tests.support.media import decode_check
from tests.support.orders import FAST, Order, context_in, generate, image_job, make, video_job

# --- images --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("aspect_ratio", "size"),
    [
        ("16:9", (1024, 576)),
        ("9:16", (576, 1024)),
        ("1:1", (1024, 1024)),
        ("4:3", (1024, 768)),
        ("3:4", (768, 1024)),
    ],
)
def test_image_size_follows_the_aspect_ratio(
    tmp_path: Path, aspect_ratio: str, size: tuple[int, int]
) -> None:
    [media] = make(image_job(aspect_ratio=aspect_ratio), tmp_path, Settings())

    assert media.path == tmp_path / "image-0.png"
    assert media.content_type == "image/png"
    assert (media.width, media.height) == size
    assert media.duration_seconds is None
    with Image.open(media.path) as image:
        assert image.format == "PNG"
        assert image.size == size


def test_sizes_are_even_for_any_long_side() -> None:
    for long_side in (64, 101, 333, 640, 1023):
        for aspect_ratio in offline.ASPECT_RATIOS:
            width, height = media_size(aspect_ratio, long_side)
            assert width % 2 == 0
            assert height % 2 == 0
            assert max(width, height) == long_side - long_side % 2


def test_count_images_are_made(tmp_path: Path) -> None:
    made = make(image_job(count=3), tmp_path)

    assert [media.path.name for media in made] == ["image-0.png", "image-1.png", "image-2.png"]
    assert len({media.path.read_bytes() for media in made}) == 3
    for media in made:
        assert image_size(media.path) == (128, 128)


def test_same_request_same_bytes_and_each_input_changes_the_image(tmp_path: Path) -> None:
    def png(name: str, job: Order) -> bytes:
        return make(job, tmp_path / name)[0].path.read_bytes()

    first = png("a", image_job(seed=5))

    assert png("b", image_job(seed=5)) == first
    assert png("seed", image_job(seed=6)) != first
    assert png("prompt", image_job("a lighthouse at dawn", seed=5)) != first
    assert png("negative", image_job(seed=5, negative_prompt="fog")) != first
    assert png("negative-again", image_job(seed=5, negative_prompt="fog")) == png(
        "negative-b", image_job(seed=5, negative_prompt="fog")
    )


def test_without_a_seed_the_creation_id_decides(tmp_path: Path) -> None:
    job = image_job()
    other_creation = job.again(creation_id="c-other")
    retry = job.again(attempt=2)

    first = make(job, tmp_path / "a")[0].path.read_bytes()

    assert make(retry, tmp_path / "b")[0].path.read_bytes() == first
    assert make(other_creation, tmp_path / "c")[0].path.read_bytes() != first


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"aspect_ratio": "21:9"}, "aspect_ratio"),
        ({"count": 0}, "count"),
        ({"count": 5}, "count"),
        ({"count": True}, "count"),
        ({"prompt": "  "}, "prompt"),
        ({"seed": "7"}, "seed"),
    ],
)
def test_bad_requests_are_invalid(tmp_path: Path, change: dict[str, Any], field: str) -> None:
    with pytest.raises(StoredRequestInvalid, match=field) as caught:
        make(image_job(**change), tmp_path)
    assert caught.value.code == "invalid_request"


def test_bad_video_duration_and_unknown_type_are_invalid(tmp_path: Path) -> None:
    with pytest.raises(StoredRequestInvalid, match="duration_seconds"):
        make(video_job(0), tmp_path)
    reel = ReelRequest(clips=["a", "b"], sources=["gs://m/a", "gs://m/b"], duration_seconds=8)
    job = Job(creation_id="c-3", user_id="u-1", type="reel")
    with pytest.raises(InvalidGenerationRequest, match="type"):
        OfflineProvider(FAST).generate(job, reel, context_in(tmp_path))


# --- videos --------------------------------------------------------------------------------


def test_video_recipe_depends_on_prompt_and_seed(tmp_path: Path) -> None:
    def args(key: str, negative: str | None = None) -> list[str]:
        out = tmp_path / "v.mp4"
        return video_ffmpeg_args(
            key, negative, size=(640, 360), fps=24, duration_seconds=8, output=out
        )

    assert args("waves|11") == args("waves|11")
    assert args("waves|12") != args("waves|11")
    assert args("waves|11", "storm") != args("waves|11")


# --- failure markers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("marker", "error", "code"),
    [
        ("[fail:permanent]", ProviderPermanent, "provider_error"),
        ("[fail:safety]", SafetyBlocked, "safety_blocked"),
        ("[fail:invalid]", InvalidGenerationRequest, "invalid_request"),
        ("[fail:empty]", EmptyResult, "empty_result"),
        ("[fail:transient]", ProviderTransient, "provider_unavailable"),
        ("[fail:timeout]", ProviderTimeout, "provider_timeout"),
        ("[FAIL:Safety]", SafetyBlocked, "safety_blocked"),
    ],
)
def test_failure_markers(tmp_path: Path, marker: str, error: type[Exception], code: str) -> None:
    with pytest.raises(error) as caught:
        make(image_job(f"a lighthouse {marker} at dusk"), tmp_path)

    assert type(caught.value) is error
    assert getattr(caught.value, "code", None) == code
    assert str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_transient_marker_fails_every_attempt(tmp_path: Path) -> None:
    for attempt in (1, 2, 5):
        with pytest.raises(ProviderTransient):
            make(image_job("x [fail:transient]", attempt=attempt), tmp_path)


@pytest.mark.parametrize("failing", [1, 2])
def test_transient_n_marker_fails_n_attempts_then_succeeds(tmp_path: Path, failing: int) -> None:
    prompt = f"[fail:transient:{failing}] a lighthouse"
    for attempt in range(1, failing + 1):
        with pytest.raises(ProviderTransient) as caught:
            make(image_job(prompt, attempt=attempt), tmp_path)
        assert type(caught.value) is ProviderTransient

    [media] = make(image_job(prompt, attempt=failing + 1), tmp_path)
    assert media.path.exists()


def test_the_first_marker_wins(tmp_path: Path) -> None:
    with pytest.raises(SafetyBlocked):
        make(image_job("[fail:safety] then [fail:empty]"), tmp_path)


@pytest.mark.parametrize(("marker", "made"), [("[withhold:1]", 3), ("[WITHHOLD:3]", 1)])
def test_the_withhold_marker_makes_fewer_images_and_says_why(
    tmp_path: Path, marker: str, made: int
) -> None:
    context = context_in(tmp_path)
    images = generate(OfflineProvider(FAST), image_job(f"a fox {marker}", count=4), context)
    assert [media.path.name for media in images] == [f"image-{i}.png" for i in range(made)]
    withheld = 4 - made
    noun = "image" if withheld == 1 else "images"
    assert context.shortfall == (
        f"{withheld} {noun} withheld by the offline provider's safety filter ({marker})."
    )


@pytest.mark.parametrize("marker", ["[withhold:4]", "[withhold:9]"])
def test_withholding_every_image_is_a_safety_block(tmp_path: Path, marker: str) -> None:
    with pytest.raises(SafetyBlocked, match="withheld all 4 images"):
        make(image_job(f"a fox {marker}", count=4), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_withholding_none_or_with_a_failure_marker(tmp_path: Path) -> None:
    context = context_in(tmp_path / "none")
    made = generate(OfflineProvider(FAST), image_job("a fox [withhold:0]", count=2), context)
    assert (len(made), context.shortfall) == (2, None)
    with pytest.raises(ProviderPermanent):  # a failure wins
        make(image_job("[withhold:1] [fail:permanent]", count=2), tmp_path / "fails")


# --- latency and deadlines -----------------------------------------------------------------


def test_latency_sleeps_through_the_injected_sleep_in_steps(tmp_path: Path) -> None:
    slept: list[float] = []
    progress: list[int] = []
    provider = OfflineProvider(
        Settings(offline_image_long_side_px=128, offline_latency_seconds=2.0), sleep=slept.append
    )

    generate(provider, image_job(), context_in(tmp_path, progress=progress.append))

    assert sum(slept) == pytest.approx(2.0)
    assert len(slept) == 4
    assert max(slept) <= 0.5
    assert progress == sorted(set(progress))
    assert progress[:4] == [7, 15, 22, 30]  # the latency fills the first 30 percent
    assert progress[-1] == 99


def test_latency_past_the_deadline_times_out_without_sleeping(tmp_path: Path) -> None:
    slept: list[float] = []
    provider = OfflineProvider(
        Settings(offline_image_long_side_px=128, offline_latency_seconds=5.0), sleep=slept.append
    )

    with pytest.raises(ProviderTimeout):
        generate(provider, image_job(), context_in(tmp_path, seconds=1.0))
    assert slept == []


def test_a_passed_deadline_times_out(tmp_path: Path) -> None:
    with pytest.raises(ProviderTimeout):
        generate(OfflineProvider(FAST), image_job(), context_in(tmp_path, seconds=-1))


# --- probing -------------------------------------------------------------------------------


def test_probes_reject_files_that_are_not_media(tmp_path: Path) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"not media at all" * 64)

    with pytest.raises(MediaProbeError):
        probe(junk)
    with pytest.raises(MediaProbeError):
        decode_check(junk)
    with pytest.raises(MediaProbeError):
        image_size(junk)
