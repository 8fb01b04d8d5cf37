"""The offline provider: real images and videos made on this machine, no API key, no network.

It is the default wherever no Google API key is set, so the whole suite (storage, thumbnails,
players, reels) runs on genuine media files.

What it makes
    Images: `count` PNGs, `image-{index}.png` (index from 0), drawn with Pillow: a soft
    gradient from a seeded palette under translucent shapes. Long side
    `offline_image_long_side_px`.
    Videos: one `video.mp4`, H.264 (yuv420p, +faststart) with an AAC tone, exactly
    `duration_seconds` long, long side `offline_video_long_side_px`, `offline_video_fps`,
    rendered by ffmpeg from lavfi sources: `gradients` (seeded colours, type, rotation speed,
    seed), drawn at a quarter of the size and scaled up (it is smooth anyway; 2-4x faster),
    and `sine` at a seeded pitch. Sizes follow `aspect_ratio` with even sides (H.264 needs them).
    A video from an image draft (`source_image`) starts from that picture instead: read from
    the bucket, cropped to fill the frame, whole in the first frame, then a slow seeded zoom
    (ffmpeg `zoompan`) towards a point near its middle; the same tone plays. If the image's
    object is gone, the video fails with `source_image_missing`.
    Width, height and duration in the result are measured from the written file.

What decides the pixels
    A sha256 of (prompt, seed, index). The same request gives byte-identical PNGs and the same
    ffmpeg recipe; another prompt or seed gives another picture. With no `seed`, the creation id
    stands in for it: two creations of one prompt differ, as with a real model, while every
    attempt at one creation makes the same media. A `negative_prompt` turns the palette's hue
    by a quarter to three quarters of a turn (from its own hash), keeping the composition, so
    its effect is visible and repeatable.

Simulated latency
    `offline_latency_seconds` is slept once, after the request is checked, through the injected
    `sleep`, in steps of at most half a second that each report progress. If it would end past
    the deadline the provider raises `ProviderTimeout` at once instead of sleeping.

Failure markers (for demos and tests)
    Put one anywhere in the prompt, in any letter case; the first one wins. They act after the
    simulated latency, so a demo shows the creation processing before it fails.

    [fail:permanent]     ProviderPermanent (code provider_error)
    [fail:safety]        SafetyBlocked (safety_blocked)
    [fail:invalid]       InvalidGenerationRequest (invalid_request)
    [fail:empty]         EmptyResult (empty_result)
    [fail:transient]     ProviderTransient (provider_unavailable) on every attempt
    [fail:transient:N]   ProviderTransient while job.attempt <= N, so attempt N+1 succeeds
    [fail:timeout]       ProviderTimeout (provider_timeout)

    [withhold:N]         images only: the last N of the `count` images are withheld, as a
                         model's safety filter does; the rest make a partial draft (refunded
                         for the N). N >= count withholds them all: SafetyBlocked. Acts with
                         the failure markers above (a failure wins).

Errors of our own machinery (ffmpeg exiting non-zero, an unreadable output) are
`ProviderTransient`: they are not the user's fault and may pass on redelivery.
"""

from __future__ import annotations

import colorsys
import hashlib
import json
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TypeVar

from google.cloud.storage import Client as StorageClient
from PIL import Image, ImageDraw, ImageFilter

from shared.core.clients import storage_client
from shared.core.settings import Settings
from shared.creations.model import Job
from shared.creations.progress import MAX_WORKING, RisingPercent
from shared.creations.requests import (
    IMAGE_ASPECT_RATIOS,
    ImageRequest,
    MediaRequest,
    StoredRequest,
    VideoRequest,
)
from shared.media.ffmpeg import FfmpegError, FfmpegTimedOut, run_ffmpeg
from shared.media.probe import MediaProbeError, image_size, probe
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
from shared.media.providers.source_image import SourceImageReader

T = TypeVar("T")
Done = Callable[[float], None]  # how much of the work is done, 0.0-1.0
RGB = tuple[int, int, int]

# (width, height) proportions of each aspect ratio the contract allows: "16:9" -> (16, 9).
ASPECT_RATIOS: dict[str, tuple[int, int]] = {
    ratio: (int(ratio.split(":")[0]), int(ratio.split(":")[1])) for ratio in IMAGE_ASPECT_RATIOS
}
LATENCY_STEP_SECONDS = 0.5
LATENCY_PROGRESS_SHARE = 30  # percent of the bar the simulated latency fills, when there is one
VIDEO_GRADIENT_TYPES = ("linear", "radial", "circular", "spiral", "square")
AUDIO_SAMPLE_RATE = 44100

_MARKER = re.compile(
    r"\[fail:(?:(?P<kind>permanent|safety|invalid|empty|timeout)|transient(?::(?P<n>\d+))?)\]",
    re.IGNORECASE,
)
_WITHHOLD = re.compile(r"\[withhold:(?P<n>\d+)\]", re.IGNORECASE)

# Colour schemes as the hue offsets (in turns) of three colour families: analogous,
# complementary, triadic, split-complementary. Two shades of each family make six colours.
_HUE_SCHEMES: tuple[tuple[float, float, float], ...] = (
    (0.0, 0.08, 0.16),
    (0.0, 0.5, 0.06),
    (0.0, 1 / 3, 2 / 3),
    (0.0, 0.42, 0.58),
)


def media_size(aspect_ratio: str, long_side: int) -> tuple[int, int]:
    """(width, height) for `aspect_ratio` with the given long side, both even."""
    wide, tall = ASPECT_RATIOS[aspect_ratio]
    long_side -= long_side % 2
    short_side = max(2, 2 * round(long_side * min(wide, tall) / max(wide, tall) / 2))
    return (long_side, short_side) if wide >= tall else (short_side, long_side)


class OfflineProvider:
    """Makes real PNGs and MP4s locally; see the module docstring for what decides them."""

    def __init__(
        self,
        settings: Settings,
        *,
        sleep: Callable[[float], None] = time.sleep,
        storage: Callable[[], StorageClient] | None = None,
    ) -> None:
        """`storage` builds the client source images are read with (on first use: a provider
        that never makes a video from an image never builds one)."""
        self._settings = settings
        self._sleep = sleep
        self._source_images = SourceImageReader(
            storage or cache(lambda: storage_client(settings)), settings.media_timeout_seconds
        )

    def generate(
        self, job: Job, request: StoredRequest, context: GenerationContext
    ) -> list[GeneratedMedia]:
        if not isinstance(request, ImageRequest | VideoRequest):
            raise InvalidGenerationRequest(
                f"type: the offline provider cannot make {request.TYPE}s"
            )
        recipe = Recipe(request, job.creation_id)
        progress = RisingPercent(context.report_progress)
        latency = self._settings.offline_latency_seconds
        work_start = LATENCY_PROGRESS_SHARE if latency > 0 else 0
        self._simulate_latency(latency, context, progress)
        _fail_if_asked(request.prompt, context.attempt)

        def work_done(fraction: float) -> None:
            progress(work_start + (MAX_WORKING - work_start) * fraction)

        if isinstance(request, ImageRequest):
            return self._make_images(request, recipe, context, work_done)
        return self._make_video(request, recipe, context, work_done)

    def _simulate_latency(
        self, latency: float, context: GenerationContext, progress: RisingPercent
    ) -> None:
        if latency <= 0:
            return
        if latency > context.seconds_left():
            raise ProviderTimeout(
                f"the offline provider's simulated latency ({latency:g} s) would pass the deadline"
            )
        steps = math.ceil(latency / LATENCY_STEP_SECONDS)
        for step in range(1, steps + 1):
            self._sleep(latency / steps)
            progress(LATENCY_PROGRESS_SHARE * step / steps)

    def _make_images(
        self, request: ImageRequest, recipe: Recipe, context: GenerationContext, done: Done
    ) -> list[GeneratedMedia]:
        size = media_size(request.aspect_ratio, self._settings.offline_image_long_side_px)
        making = _images_to_make(request, context)
        made: list[GeneratedMedia] = []
        for index in range(making):
            if context.seconds_left() <= 0:
                raise ProviderTimeout("the deadline passed while drawing images")
            path = context.workdir / f"image-{index}.png"
            draw_image(recipe.key(index), request.negative_prompt, size).save(path, format="PNG")
            try:
                width, height = image_size(path)
            except MediaProbeError as exc:
                raise ProviderTransient(f"the offline provider wrote a bad image: {exc}") from exc
            made.append(GeneratedMedia(path, "image/png", width, height))
            done((index + 1) / making)
        return made

    def _make_video(
        self, request: VideoRequest, recipe: Recipe, context: GenerationContext, done: Done
    ) -> list[GeneratedMedia]:
        settings = self._settings
        size = media_size(request.aspect_ratio, settings.offline_video_long_side_px)
        path = context.workdir / "video.mp4"
        if request.source_image is not None:
            image = self._source_images.download(request.source_image, context.workdir, context)
            args = image_video_ffmpeg_args(
                image,
                recipe.key(0),
                size=size,
                fps=settings.offline_video_fps,
                duration_seconds=request.duration_seconds,
                output=path,
            )
        else:
            args = video_ffmpeg_args(
                recipe.key(0),
                request.negative_prompt,
                size=size,
                fps=settings.offline_video_fps,
                duration_seconds=request.duration_seconds,
                output=path,
            )
        if context.seconds_left() <= 0:
            raise ProviderTimeout("the deadline passed before the video was rendered")
        try:
            run_ffmpeg(
                args,
                deadline=context.deadline,
                on_progress=lambda seconds: done(min(1.0, seconds / request.duration_seconds)),
            )
            found = probe(path)
        except FfmpegTimedOut as exc:
            path.unlink(missing_ok=True)
            raise ProviderTimeout("the deadline passed while rendering the video") from exc
        except FfmpegError as exc:
            raise ProviderTransient(
                f"the offline provider could not render the video: {exc}"
            ) from exc
        except MediaProbeError as exc:
            raise ProviderTransient(f"the offline provider wrote a bad video: {exc}") from exc
        done(1.0)
        return [
            GeneratedMedia(path, "video/mp4", found.width, found.height, found.duration_seconds)
        ]


# --- what decides the output ------------------------------------------------------------


@dataclass(frozen=True)
class Recipe:
    """What decides the look of each output: the prompt and the seed, or the creation id
    standing in for a missing seed."""

    request: MediaRequest
    creation_id: str

    def key(self, index: int) -> str:
        """One output's key; JSON so no two different inputs share a key."""
        seed_key = (
            self.request.seed if self.request.seed is not None else f"creation:{self.creation_id}"
        )
        return json.dumps([self.request.prompt, seed_key, index], ensure_ascii=False)


def _images_to_make(request: ImageRequest, context: GenerationContext) -> int:
    """How many of the `count` images to make: all, or fewer if a `[withhold:N]` marker asks
    (said in `context.shortfall`); none is a safety block."""
    match = _WITHHOLD.search(request.prompt)
    withheld = min(int(match["n"]), request.count) if match else 0
    if match is None or withheld == 0:
        return request.count
    if withheld == request.count:
        raise SafetyBlocked(
            f"The offline provider withheld all {request.count} images ({match[0]})."
        )
    noun = "image" if withheld == 1 else "images"
    context.say_short(
        f"{withheld} {noun} withheld by the offline provider's safety filter ({match[0]})."
    )
    return request.count - withheld


def _fail_if_asked(prompt: str, attempt: int) -> None:
    """Raise what the first failure marker in the prompt asks for, if there is one."""
    match = _MARKER.search(prompt)
    if match is None:
        return
    kind = (match["kind"] or "transient").lower()
    if kind == "permanent":
        raise ProviderPermanent("The offline provider was asked to fail ([fail:permanent]).")
    if kind == "safety":
        raise SafetyBlocked("The prompt was blocked by the offline provider ([fail:safety]).")
    if kind == "invalid":
        raise InvalidGenerationRequest(
            "The offline provider rejected the request ([fail:invalid])."
        )
    if kind == "empty":
        raise EmptyResult("The offline provider returned no media ([fail:empty]).")
    if kind == "timeout":
        raise ProviderTimeout("The offline provider was asked to time out ([fail:timeout]).")
    failing_attempts = match["n"]
    if failing_attempts is None or attempt <= int(failing_attempts):
        raise ProviderTransient(
            f"The offline provider was asked to fail attempt {attempt} ({match[0]})."
        )


# --- deterministic choices -----------------------------------------------------------------


class _Dice:
    """A stream of numbers fixed by a key: sha256 in counter mode.

    Not `random.Random`: its methods' algorithms may change between Python versions, and these
    numbers decide pixels that must stay the same for the same request.
    """

    def __init__(self, *key: str) -> None:
        self._key = hashlib.sha256("\0".join(key).encode()).digest()
        self._counter = 0
        self._pool = b""

    def unit(self) -> float:
        """A number in [0, 1)."""
        if len(self._pool) < 7:
            block = hashlib.sha256(self._key + self._counter.to_bytes(8, "big")).digest()
            self._pool += block
            self._counter += 1
        chunk, self._pool = self._pool[:7], self._pool[7:]
        return int.from_bytes(chunk, "big") / 2**56

    def between(self, low: float, high: float) -> float:
        return low + (high - low) * self.unit()

    def below(self, n: int) -> int:
        return min(n - 1, int(self.unit() * n))

    def pick(self, options: Sequence[T]) -> T:
        return options[self.below(len(options))]


def _palette(dice: _Dice, negative_prompt: str | None) -> list[RGB]:
    """Six harmonious colours; a negative prompt turns their hue (see the module docstring)."""
    base = dice.unit()
    if negative_prompt:
        base += _Dice("negative", negative_prompt).between(0.25, 0.75)
    colours: list[RGB] = []
    for offset in dice.pick(_HUE_SCHEMES):
        for _shade in range(2):
            red, green, blue = colorsys.hsv_to_rgb(
                (base + offset) % 1.0, dice.between(0.35, 0.9), dice.between(0.45, 1.0)
            )
            colours.append((round(red * 255), round(green * 255), round(blue * 255)))
    return colours


def _hex(colour: RGB) -> str:
    return "0x{:02x}{:02x}{:02x}".format(*colour)


# --- images --------------------------------------------------------------------------------


def draw_image(key: str, negative_prompt: str | None, size: tuple[int, int]) -> Image.Image:
    """One picture for `key`: a palette gradient, blurred far shapes, sharp near shapes."""
    dice = _Dice("image", key)
    palette = _palette(dice, negative_prompt)
    width, height = size
    # A 3x3 grid of colours scaled up smoothly makes a multi-point gradient in milliseconds.
    grid = Image.new("RGB", (3, 3))
    grid.putdata([dice.pick(palette) for _ in range(9)])
    picture = grid.resize(size, Image.Resampling.BICUBIC).convert("RGBA")
    short = min(width, height)
    for shapes, blur in ((5 + dice.below(5), short / 40), (3 + dice.below(4), 0.0)):
        layer = Image.new("RGBA", size, (0, 0, 0, 0))
        pen = ImageDraw.Draw(layer)
        for _ in range(shapes):
            _draw_shape(pen, dice, palette, width, height)
        if blur:
            layer = layer.filter(ImageFilter.GaussianBlur(blur))
        picture.alpha_composite(layer)
    return picture.convert("RGB")


def _draw_shape(
    pen: ImageDraw.ImageDraw, dice: _Dice, palette: list[RGB], width: int, height: int
) -> None:
    x, y = dice.between(0, width), dice.between(0, height)
    radius = min(width, height) * dice.between(0.04, 0.3)
    fill = (*dice.pick(palette), 90 + dice.below(120))
    box = (x - radius, y - radius, x + radius, y + radius)
    shape = dice.pick(("disc", "ring", "box", "triangle"))
    if shape == "disc":
        pen.ellipse(box, fill=fill)
    elif shape == "ring":
        pen.ellipse(box, outline=fill, width=max(1, round(radius * dice.between(0.08, 0.3))))
    elif shape == "box":
        pen.rounded_rectangle(box, radius=radius * dice.between(0.0, 0.5), fill=fill)
    else:
        turn = dice.unit() * 2 * math.pi
        corners = [
            (
                x + radius * math.cos(turn + k * 2 * math.pi / 3),
                y + radius * math.sin(turn + k * 2 * math.pi / 3),
            )
            for k in range(3)
        ]
        pen.polygon(corners, fill=fill)


# --- videos --------------------------------------------------------------------------------


def video_ffmpeg_args(
    key: str,
    negative_prompt: str | None,
    *,
    size: tuple[int, int],
    fps: int,
    duration_seconds: float,
    output: Path,
) -> list[str]:
    """ffmpeg arguments rendering the clip for `key` to `output` (see `run_ffmpeg`)."""
    dice = _Dice("video", key)
    palette = _palette(dice, negative_prompt)
    width, height = size
    colours = [dice.pick(palette) for _ in range(2 + dice.below(4))]
    gradients = ":".join(
        [
            f"gradients=s={max(16, width // 4)}x{max(16, height // 4)}",
            f"r={fps}",
            f"n={len(colours)}",
            *(f"c{i}={_hex(colour)}" for i, colour in enumerate(colours)),
            f"type={dice.pick(VIDEO_GRADIENT_TYPES)}",
            f"speed={dice.between(0.005, 0.04):.4f}",
            f"seed={int(dice.unit() * 2**32)}",
            f"d={duration_seconds:g}",
        ]
    )
    tone = _tone(dice, duration_seconds)
    graph = ";".join([f"{gradients},scale={width}:{height}:flags=bicubic,format=yuv420p[v]", tone])
    return ["-filter_complex", graph, *_encoding(fps, duration_seconds, output)]


def image_video_ffmpeg_args(
    image: Path,
    key: str,
    *,
    size: tuple[int, int],
    fps: int,
    duration_seconds: float,
    output: Path,
) -> list[str]:
    """ffmpeg arguments rendering a clip that starts from `image` to `output`: the picture,
    cropped to fill `size`, seen whole in the first frame, then a slow zoom towards a point
    near its middle (how far and where from `key`, as the rest of the recipe)."""
    dice = _Dice("image-video", key)
    width, height = size
    frames = max(2, round(duration_seconds * fps))
    zoom_to = dice.between(1.15, 1.35)
    focus_x, focus_y = dice.between(0.3, 0.7), dice.between(0.3, 0.7)
    # zoompan moves its window in whole input pixels: at twice the output size each step is
    # half an output pixel, so the zoom glides instead of shaking.
    wide, tall = 2 * width, 2 * height
    zoom = ":".join(
        [
            f"zoompan=z='1+{zoom_to - 1:.4f}*on/{frames - 1}'",
            f"x='(iw-iw/zoom)*{focus_x:.4f}'",
            f"y='(ih-ih/zoom)*{focus_y:.4f}'",
            f"d={frames}",
            f"s={width}x{height}",
            f"fps={fps}",
        ]
    )
    picture = ",".join(
        [
            f"[0:v]scale={wide}:{tall}:force_original_aspect_ratio=increase:flags=lanczos",
            f"crop={wide}:{tall}",
            "setsar=1",
            zoom,
            "format=yuv420p[v]",
        ]
    )
    graph = ";".join([picture, _tone(dice, duration_seconds)])
    return [
        # One still frame in; zoompan makes `frames` frames of it.
        *("-i", str(image)),
        *("-filter_complex", graph),
        *_encoding(fps, duration_seconds, output),
    ]


def _tone(dice: _Dice, duration_seconds: float) -> str:
    """The soundtrack's filter graph, `[a]`: a quiet seeded tone, with short fades so it does
    not click on and off."""
    tone = ":".join(
        [
            f"sine=f={dice.between(196.0, 784.0):.2f}",  # G3 to G5
            f"b={dice.pick((0, 2, 3, 4))}",  # a higher beep once a second, or none
            f"r={AUDIO_SAMPLE_RATE}",
            f"d={duration_seconds:g}",
        ]
    )
    fade_out_at = max(0.0, duration_seconds - 0.3)
    return f"{tone},volume=0.2,afade=t=in:d=0.05,afade=t=out:st={fade_out_at:g}:d=0.3[a]"


def _encoding(fps: int, duration_seconds: float, output: Path) -> list[str]:
    """Writing `[v]` and `[a]` to `output`: H.264 and AAC, exactly `duration_seconds` long."""
    return [
        *("-map", "[v]", "-map", "[a]"),
        *("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"),
        # A keyframe every second keeps the clip seekable and cheap to cut for reels.
        *("-g", str(fps)),
        *("-c:a", "aac", "-b:a", "96k"),
        *("-movflags", "+faststart", "-t", f"{duration_seconds:g}", "-y", str(output)),
    ]
