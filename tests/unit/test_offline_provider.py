"""The offline provider makes real, decodable media, deterministically, and fails on request."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from shared.core.settings import Settings
from shared.creations.model import Job
from shared.creations.requests import ReelRequest, StoredRequestInvalid, stored_request
from shared.media.probe import MediaProbeError, decode_check, image_size, probe
from shared.media.providers import offline
from shared.media.providers.base import (
    EmptyResult,
    GeneratedMedia,
    GenerationContext,
    InvalidGenerationRequest,
    ProviderPermanent,
    ProviderTimeout,
    ProviderTransient,
    SafetyBlocked,
)
from shared.media.providers.offline import OfflineProvider, media_size, video_ffmpeg_args

# Small images keep the tests quick; the aspect-ratio test uses the real default size.
FAST = Settings(offline_image_long_side_px=128)


@dataclass(frozen=True)
class Order:
    """One creation as the worker hands it over: which one, its stored request, the attempt."""

    job: Job
    request: dict[str, Any]
    attempt: int = 1

    def again(self, *, attempt: int | None = None, creation_id: str | None = None) -> Order:
        job = self.job.model_copy(update={"creation_id": creation_id or self.job.creation_id})
        return Order(job, self.request, attempt or self.attempt)


def image_job(prompt: str = "a lighthouse at dusk", *, attempt: int = 1, **request: Any) -> Order:
    body = {"prompt": prompt, "model": "imagen-4.0-generate-001", "aspect_ratio": "1:1", "count": 1}
    job = Job(creation_id="c-1", user_id="u-1", type="image")
    return Order(job, {**body, **request}, attempt)


def video_job(seconds: int = 4, **request: Any) -> Order:
    body = {
        "prompt": "waves on a pebble beach",
        "model": "veo-3.0-fast-generate-001",
        "aspect_ratio": "16:9",
        "duration_seconds": seconds,
        "seed": 11,
    }
    return Order(Job(creation_id="c-2", user_id="u-1", type="video"), {**body, **request})


def context_in(
    workdir: Path,
    *,
    seconds: float = 30.0,
    progress: Callable[[int], None] | None = None,
    attempt: int = 1,
) -> GenerationContext:
    workdir.mkdir(parents=True, exist_ok=True)
    return GenerationContext(
        workdir=workdir,
        deadline=time.monotonic() + seconds,
        attempt=attempt,
        report_progress=progress or (lambda _percent: None),
    )


def generate(
    provider: OfflineProvider, order: Order, context: GenerationContext
) -> list[GeneratedMedia]:
    """What the worker does: check the stored request, then hand it to the provider."""
    request = stored_request(order.job.type, order.request)
    return provider.generate(order.job, request, context)


def make(order: Order, workdir: Path, settings: Settings = FAST) -> list[GeneratedMedia]:
    return generate(OfflineProvider(settings), order, context_in(workdir, attempt=order.attempt))


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


class Made:
    def __init__(self, media: GeneratedMedia, progress: list[int], seconds: float) -> None:
        self.media = media
        self.progress = progress
        self.seconds = seconds


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Made]:
    """A 4 s and an 8 s clip at the default settings, made once for the tests below."""
    made: dict[int, Made] = {}
    for seconds in (4, 8):
        progress: list[int] = []
        workdir = tmp_path_factory.mktemp(f"video-{seconds}")
        context = context_in(workdir, progress=progress.append)
        [media] = generate(OfflineProvider(Settings()), video_job(seconds), context)
        made[seconds] = Made(media, progress, seconds)
    return made


@pytest.mark.parametrize("seconds", [4, 8])
def test_video_lasts_the_requested_duration(videos: dict[int, Made], seconds: int) -> None:
    media = videos[seconds].media
    assert media.path.name == "video.mp4"
    assert media.content_type == "video/mp4"
    assert media.duration_seconds == pytest.approx(seconds, abs=0.1)
    assert probe(media.path).duration_seconds == pytest.approx(seconds, abs=0.1)


def test_video_is_h264_yuv420p_with_aac_at_the_set_size_and_fps(videos: dict[int, Made]) -> None:
    found = probe(videos[8].media.path)

    assert (found.width, found.height) == (640, 360)
    assert (videos[8].media.width, videos[8].media.height) == (640, 360)
    assert found.video_codec == "h264"
    assert found.pixel_format == "yuv420p"
    assert found.audio_codec == "aac"
    assert found.fps == 24


def test_video_is_faststart(videos: dict[int, Made]) -> None:
    # +faststart moves the index (moov) before the media data (mdat) so players start at once.
    head = videos[8].media.path.read_bytes()
    assert 0 <= head.find(b"moov") < head.find(b"mdat")


@pytest.mark.parametrize("seconds", [4, 8])
def test_every_video_frame_decodes(videos: dict[int, Made], seconds: int) -> None:
    assert decode_check(videos[seconds].media.path) == seconds * 24


@pytest.mark.parametrize("seconds", [4, 8])
def test_video_progress_rises_to_99(videos: dict[int, Made], seconds: int) -> None:
    progress = videos[seconds].progress
    assert progress, "no progress was reported"
    assert progress == sorted(set(progress))
    assert all(0 <= percent <= 99 for percent in progress)
    assert progress[-1] == 99


@pytest.mark.parametrize(("aspect_ratio", "size"), [("9:16", (360, 640)), ("1:1", (640, 640))])
def test_video_size_follows_the_aspect_ratio(
    tmp_path: Path, aspect_ratio: str, size: tuple[int, int]
) -> None:
    [media] = make(video_job(4, aspect_ratio=aspect_ratio), tmp_path, Settings())

    assert (media.width, media.height) == size
    assert (probe(media.path).width, probe(media.path).height) == size


def test_video_recipe_depends_on_prompt_and_seed(tmp_path: Path) -> None:
    def args(key: str, negative: str | None = None) -> list[str]:
        out = tmp_path / "v.mp4"
        return video_ffmpeg_args(
            key, negative, size=(640, 360), fps=24, duration_seconds=8, output=out
        )

    assert args("waves|11") == args("waves|11")
    assert args("waves|12") != args("waves|11")
    assert args("waves|11", "storm") != args("waves|11")


def test_video_past_the_deadline_is_killed(tmp_path: Path) -> None:
    # A large 60 fps clip takes seconds to render; the deadline comes long before.
    settings = Settings(offline_video_long_side_px=1920, offline_video_fps=60)
    before = child_pids()  # e.g. the session's emulators, when integration tests run too

    with pytest.raises(ProviderTimeout):
        generate(OfflineProvider(settings), video_job(8), context_in(tmp_path, seconds=0.3))

    assert not (tmp_path / "video.mp4").exists()
    assert child_pids() - before == set(), "ffmpeg was left running"


def child_pids() -> set[int]:
    """This process's live children (Linux), e.g. an ffmpeg that was not killed and reaped."""
    pids: set[int] = set()
    for children in Path("/proc/self/task").glob("*/children"):
        pids.update(int(pid) for pid in children.read_text().split())
    return pids


def test_ffmpeg_failure_is_transient_with_its_stderr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_recipe(*_args: Any, output: Path, **_kwargs: Any) -> list[str]:
        return ["-f", "lavfi", "-i", "no_such_source", "-y", str(output)]

    monkeypatch.setattr(offline, "video_ffmpeg_args", broken_recipe)

    with pytest.raises(ProviderTransient, match="no_such_source") as caught:
        make(video_job(4), tmp_path)
    assert type(caught.value) is ProviderTransient


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
