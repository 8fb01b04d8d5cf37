"""Running the ffmpeg binary: where it is, progress as it encodes, and a hard deadline.

The binary comes from the imageio-ffmpeg wheel (a static build with libx264 and the lavfi
sources), so a Cloud Functions runtime needs no system package; `IMAGEIO_FFMPEG_EXE` may point
elsewhere. Progress comes from `-progress pipe:1` (key=value blocks on stdout), read on a helper
thread so the calling thread can wait for it *and* the deadline at once; callbacks still run on
the calling thread.
"""

from __future__ import annotations

import queue
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import IO

# No py.typed in the wheel; the one function we use returns the binary's path.
import imageio_ffmpeg  # type: ignore[import-untyped]

STDERR_TAIL_CHARS = 2000


class FfmpegError(Exception):
    """ffmpeg could not produce the output."""


class FfmpegMissing(FfmpegError):
    """No ffmpeg binary was found."""


class FfmpegFailed(FfmpegError):
    """ffmpeg exited non-zero. `stderr_tail` is the end of what it logged."""

    def __init__(self, returncode: int, stderr_tail: str) -> None:
        super().__init__(f"ffmpeg exited with {returncode}: {stderr_tail}")
        self.returncode = returncode
        self.stderr_tail = stderr_tail


class FfmpegTimedOut(FfmpegError):
    """The deadline passed while ffmpeg was running; it has been killed."""


@lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary (looked up once per process)."""
    try:
        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except RuntimeError as exc:
        raise FfmpegMissing(str(exc)) from exc


def run_ffmpeg(
    args: Sequence[str],
    *,
    deadline: float,
    on_progress: Callable[[float], None] = lambda _seconds: None,
) -> None:
    """Run ffmpeg with `args` (inputs, filters, outputs) until it exits or `deadline` passes.

    `deadline` is a `time.monotonic()` value. `on_progress` receives the seconds of output
    written so far, as ffmpeg reports them (about twice a second). Raises `FfmpegTimedOut`
    (after killing ffmpeg) or `FfmpegFailed`.
    """
    command = [
        ffmpeg_exe(),
        *("-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", "-progress", "pipe:1"),
        *args,
    ]
    # stderr goes to a file, not a pipe: nobody reads it until the end, and a full pipe would
    # stall ffmpeg.
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(  # noqa: S603  (argv built here, no shell)
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr
        )
        stdout = process.stdout
        if stdout is None:  # cannot happen with stdout=PIPE; narrows the type
            raise FfmpegError("ffmpeg started without a stdout pipe")
        events: queue.Queue[float | None] = queue.Queue()
        reader = threading.Thread(
            target=_read_progress, args=(stdout, events), name="ffmpeg-progress"
        )
        reader.start()
        try:
            returncode = _wait(process, events, deadline, on_progress)
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()
            reader.join()
            stdout.close()
        if returncode != 0:
            stderr.seek(0)
            tail = stderr.read().decode("utf-8", errors="replace").strip()[-STDERR_TAIL_CHARS:]
            raise FfmpegFailed(returncode, tail)


def _wait(
    process: subprocess.Popen[bytes],
    events: queue.Queue[float | None],
    deadline: float,
    on_progress: Callable[[float], None],
) -> int:
    """Relay progress until ffmpeg closes stdout, then take its exit code; all by `deadline`."""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FfmpegTimedOut("ffmpeg ran past the deadline")
        try:
            event = events.get(timeout=remaining)
        except queue.Empty:
            continue  # the loop head raises: the deadline has passed
        if event is None:
            break
        on_progress(event)
    try:
        return process.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        raise FfmpegTimedOut("ffmpeg ran past the deadline") from None


def _read_progress(stdout: IO[bytes], events: queue.Queue[float | None]) -> None:
    """Turn `out_time_us=N` lines into seconds on `events`; `None` once stdout closes."""
    try:
        for raw in stdout:
            key, _, value = raw.decode("ascii", errors="replace").strip().partition("=")
            # "N/A" before the first frame is written.
            if key == "out_time_us" and value.lstrip("-").isdigit():
                events.put(max(0, int(value)) / 1_000_000)
    finally:
        events.put(None)
