"""The offline provider's videos from an image: real ffmpeg renders that start from the picture.

The picture is compared with the video's frames as small greyscale thumbnails
(`tests.support.media.picture_difference`): the first frame is the picture (cropped to fill the
frame), clearly not another picture, and the clip moves away from it (a slow zoom).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from PIL import Image

from shared.media.ffmpeg import run_ffmpeg
from shared.media.probe import probe
from shared.media.providers.offline import draw_image, image_video_ffmpeg_args
from tests.support.media import decode_check, first_frame, picture_difference, video_frames

# The same picture re-encoded differs by 1-2 (of 255); two different pictures by 20 or more.
SAME_PICTURE = 6.0
FPS = 24


def render(image: Path, output: Path, *, size: tuple[int, int], seconds: int = 4) -> Path:
    args = image_video_ffmpeg_args(
        image, "a lighthouse", size=size, fps=FPS, duration_seconds=seconds, output=output
    )
    run_ffmpeg(args, deadline=time.monotonic() + 120)
    return output


@pytest.fixture(scope="module")
def pictures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two different 4:3 pictures, as the offline provider draws image drafts."""
    folder = tmp_path_factory.mktemp("pictures")
    made: dict[str, Path] = {}
    for name in ("source", "other"):
        made[name] = folder / f"{name}.png"
        draw_image(f"picture {name}", None, (512, 384)).save(made[name])
    return made


@pytest.fixture(scope="module")
def clip(pictures: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4 s 16:9 clip from the source picture."""
    return render(
        pictures["source"], tmp_path_factory.mktemp("clip") / "video.mp4", size=(640, 360)
    )


def test_the_first_frame_is_the_source_picture(clip: Path, pictures: dict[str, Path]) -> None:
    frame = first_frame(clip)
    source, other = (Image.open(pictures[name]) for name in ("source", "other"))

    assert picture_difference(frame, source) < SAME_PICTURE
    assert picture_difference(frame, other) > 3 * SAME_PICTURE


def test_the_picture_moves(clip: Path) -> None:
    frames = video_frames(clip)
    first, middle, last = frames[0], frames[len(frames) // 2], frames[-1]

    # Zooming in: each later frame is further from the first.
    assert 0 < picture_difference(middle, first) < picture_difference(last, first)


def test_the_clip_lasts_the_requested_duration_at_the_requested_size(clip: Path) -> None:
    found = probe(clip)

    assert found.duration_seconds == pytest.approx(4, abs=0.1)
    assert (found.width, found.height) == (640, 360)
    assert (found.video_codec, found.audio_codec) == ("h264", "aac")
    assert found.pixel_format == "yuv420p"
    assert decode_check(clip) == 4 * FPS


@pytest.mark.parametrize(("size", "seconds"), [((360, 640), 6), ((480, 480), 8)])
def test_other_shapes_and_lengths_crop_the_picture_to_fill_the_frame(
    pictures: dict[str, Path], tmp_path: Path, size: tuple[int, int], seconds: int
) -> None:
    made = render(pictures["source"], tmp_path / "video.mp4", size=size, seconds=seconds)
    found = probe(made)

    assert (found.width, found.height) == size
    assert found.duration_seconds == pytest.approx(seconds, abs=0.1)
    assert picture_difference(first_frame(made), Image.open(pictures["source"])) < SAME_PICTURE
