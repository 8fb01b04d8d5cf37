"""How much `stitch()` costs over running ffmpeg by hand, on both of its paths.

Run: `.venv/bin/python -m benchmarks.stitch_benchmark [--runs 5] [--copy-runs 20] [--clips 10]
[--seconds 8]` (or `make bench-stitch`). Not a test: it prints times and asserts nothing. See
benchmarks/README.md.

Copy path: matching clips, `stitch()` against
`ffmpeg -f concat -safe 0 -i list -c copy -movflags +faststart out.mp4`, twice: with the
offline provider's clips (640x360, 24 fps, H.264 + AAC; tiny files) and with 720p clips at
5 Mbit/s (sizes like a camera's or a model's). The difference is stitch's own work: a
header-only probe of every clip, the progress pipe, and a header-only probe of the result.

Re-encode path: 640x360, 360x640 and 480x480 clips in turn, `stitch()` against a
hand-written ffmpeg command with the same normalisation and encoder settings, so the ratio
shows the wrapper's overhead rather than a different encode.

Each side runs `--copy-runs` / `--runs` times (a copy takes a tenth of a second, so it gets
more tries against a noisy machine), interleaved (plain, stitch, plain, ...) so a machine that
speeds up or slows down during the run affects both; the best time of each is reported.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from shared.media.ffmpeg import ffmpeg_exe, run_ffmpeg
from shared.media.providers.offline import video_ffmpeg_args
from shared.media.reels import probe_clip, stitch

FPS = 24
WIDE, TALL, SQUARE = (640, 360), (360, 640), (480, 480)
SETUP_DEADLINE_SECONDS = 600.0


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="timed re-encodes (best wins)")
    parser.add_argument("--copy-runs", type=int, default=20, help="timed copies (best wins)")
    parser.add_argument("--clips", type=int, default=10, help="clips per reel")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each clip")
    options = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="stitch-bench-") as folder:
        work = Path(folder)
        count, seconds = options.clips, options.seconds
        print(f"making {count} x {seconds:g} s clips of each set in {work} ...")
        matching = make_clips(work / "matching", [WIDE], count, seconds)
        dense = make_dense_clips(work / "dense", count, seconds)
        mixed = make_clips(work / "mixed", [WIDE, TALL, SQUARE], count, seconds)
        print(f"each reel is {count * seconds:g} s\n")

        compare_copy("copy", matching, work, options.copy_runs)
        compare_copy("copy 720p", dense, work, options.copy_runs)
        reencode_plain = hand_written_reencode(mixed, WIDE, work / "plain-reencode.mp4")
        compare(
            "reencode",
            plain=lambda: run_plain(reencode_plain),
            ours=lambda: run_stitch(mixed, work / "stitch-reencode.mp4", "reencode"),
            runs=options.runs,
        )


def compare_copy(name: str, clips: Sequence[Path], work: Path, runs: int) -> None:
    list_file = work / f"{name}.txt"
    list_file.write_text("".join(f"file '{path}'\n" for path in clips))
    plain = [
        *("-f", "concat", "-safe", "0", "-i", str(list_file)),
        *("-c", "copy", "-movflags", "+faststart", "-y", str(work / "plain-copy.mp4")),
    ]
    compare(
        name,
        plain=lambda: run_plain(plain),
        ours=lambda: run_stitch(clips, work / "stitch-copy.mp4", "copy"),
        runs=runs,
    )
    megabytes = sum(path.stat().st_size for path in clips) / 1e6
    probing = min(timed(lambda: probe_all(clips)) for _ in range(runs))
    print(f"{'':>22}{megabytes:.1f} MB of clips; probing them takes {probing * 1000:.0f} ms")


def make_clips(
    folder: Path, sizes: Sequence[tuple[int, int]], count: int, seconds: float
) -> list[Path]:
    folder.mkdir()
    paths = []
    for index in range(count):
        path = folder / f"clip-{index:02d}.mp4"
        args = video_ffmpeg_args(
            f"bench-{index}",
            None,
            size=sizes[index % len(sizes)],
            fps=FPS,
            duration_seconds=seconds,
            output=path,
        )
        run_ffmpeg(args, deadline=time.monotonic() + SETUP_DEADLINE_SECONDS)
        paths.append(path)
    return paths


def make_dense_clips(folder: Path, count: int, seconds: float) -> list[Path]:
    """1280x720 at 5 Mbit/s, like a camera's or a model's clips (the offline recipe's smooth
    gradients compress to a few hundred kbit/s, which flatters nothing but ffmpeg's start-up)."""
    folder.mkdir()
    paths = []
    for index in range(count):
        path = folder / f"clip-{index:02d}.mp4"
        args = [
            *(
                "-f",
                "lavfi",
                "-i",
                f"testsrc2=s=1280x720:r={FPS}:d={seconds:g},noise=alls=4:allf=t",
            ),
            *("-f", "lavfi", "-i", f"sine=f={220 + 20 * index}:r=48000:d={seconds:g}"),
            *("-c:v", "libx264", "-preset", "ultrafast", "-b:v", "5M", "-pix_fmt", "yuv420p"),
            *("-c:a", "aac", "-shortest", "-movflags", "+faststart", "-y", str(path)),
        ]
        run_ffmpeg(args, deadline=time.monotonic() + SETUP_DEADLINE_SECONDS)
        paths.append(path)
    return paths


def hand_written_reencode(clips: Sequence[Path], size: tuple[int, int], output: Path) -> list[str]:
    """The re-encode as one would type it: same canvas, filters and encoder settings."""
    width, height = size
    inputs: list[str] = []
    chains: list[str] = []
    for index, clip in enumerate(clips):
        inputs += ["-i", str(clip)]
        chains.append(
            f"[{index}:v]fps={FPS},scale={width}:{height}:force_original_aspect_ratio=decrease,"
            f"pad={width}:{height}:(ow-iw)/2:(oh-ih)/2,setsar=1,format=yuv420p[v{index}]"
        )
        chains.append(f"[{index}:a]aresample=48000,aformat=channel_layouts=stereo[a{index}]")
    pairs = "".join(f"[v{index}][a{index}]" for index in range(len(clips)))
    chains.append(f"{pairs}concat=n={len(clips)}:v=1:a=1[v][a]")
    return [
        *inputs,
        *("-filter_complex", ";".join(chains), "-map", "[v]", "-map", "[a]"),
        *("-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p"),
        *("-g", str(2 * FPS), "-c:a", "aac", "-b:a", "128k"),
        *("-movflags", "+faststart", "-y", str(output)),
    ]


def run_plain(args: Sequence[str]) -> None:
    command = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", *args]
    subprocess.run(command, check=True, stdin=subprocess.DEVNULL)  # noqa: S603


def run_stitch(clips: Sequence[Path], output: Path, expected_mode: str) -> None:
    result = stitch(clips, output, deadline=time.monotonic() + SETUP_DEADLINE_SECONDS)
    if result.mode != expected_mode:
        raise SystemExit(f"stitch took the {result.mode} path, not {expected_mode}")


def probe_all(clips: Sequence[Path]) -> None:
    for clip in clips:
        probe_clip(clip)


def compare(name: str, *, plain: Callable[[], None], ours: Callable[[], None], runs: int) -> None:
    plain_times: list[float] = []
    ours_times: list[float] = []
    for _ in range(runs):
        plain_times.append(timed(plain))
        ours_times.append(timed(ours))
    best_plain, best_ours = min(plain_times), min(ours_times)
    print(
        f"{name:>9} (best of {runs:2d}): plain ffmpeg {best_plain:7.3f} s   "
        f"stitch() {best_ours:7.3f} s   ratio {best_ours / best_plain:.2f}x"
    )


def timed(action: Callable[[], None]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
