"""The offline provider's videos: real ffmpeg renders, measured from the files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shared.core.settings import Settings
from shared.media.probe import probe
from shared.media.providers import offline
from shared.media.providers.base import (
    GeneratedMedia,
    ProviderTimeout,
    ProviderTransient,
)
from shared.media.providers.offline import OfflineProvider
from tests.support.media import decode_check
from tests.support.orders import context_in, generate, make, video_job


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
