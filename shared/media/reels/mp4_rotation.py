"""The display rotation of an MP4/MOV file's first video track, read from its header.

Phones store portrait video as landscape pixels plus a rotation in the track header's
transformation matrix ('moov' > 'trak' > 'tkhd'). libavformat reads it, but PyAV only exposes
it on decoded frames, and decoding the first frames of a 720p clip costs tens of milliseconds
where this costs well under one: the header is kilobytes, found by skipping from box header
to box header.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

_BOX = struct.Struct(">I4s")
_LARGE_SIZE = struct.Struct(">Q")
_MATRIX = struct.Struct(">9i")
# A 'moov' is kilobytes for a clip, a few megabytes for hours of video; beyond this the file is
# not one of ours, and it is not worth reading into memory.
MAX_MOOV_BYTES = 64 * 1024 * 1024
MAX_TOP_LEVEL_BOXES = 1024


def video_rotation(path: Path) -> int:
    """Counter-clockwise degrees, as PyAV's `VideoFrame.rotation` gives them (90, 180, -90).

    0 when the file has no rotation, is not an MP4/MOV, or its header cannot be parsed: the
    caller has already opened it with PyAV, so this only refines what that found.
    """
    with path.open("rb") as file:
        moov = _top_level_box(file, b"moov")
    if moov is None:
        return 0
    for kind, trak in _boxes(moov):
        if kind != b"trak":
            continue
        header = handler = None
        for child_kind, child in _boxes(trak):
            if child_kind == b"tkhd":
                header = child
            elif child_kind == b"mdia":
                handler = next((body for k, body in _boxes(child) if k == b"hdlr"), None)
        # hdlr: version/flags (4), pre_defined (4), then the handler type.
        if handler is not None and bytes(handler[8:12]) == b"vide":
            return _rotation(header) if header is not None else 0
    return 0


def _top_level_box(file: BinaryIO, wanted: bytes) -> memoryview | None:
    """The body of the first top-level box of type `wanted`, skipping (not reading) others."""
    for _ in range(MAX_TOP_LEVEL_BOXES):
        header = file.read(_BOX.size)
        if len(header) < _BOX.size:
            return None
        size, kind = _BOX.unpack(header)
        header_size = _BOX.size
        if size == 1:  # the real size follows as 64 bits
            large = file.read(_LARGE_SIZE.size)
            if len(large) < _LARGE_SIZE.size:
                return None
            (size,) = _LARGE_SIZE.unpack(large)
            header_size += _LARGE_SIZE.size
        body_size = None if size == 0 else size - header_size  # size 0: up to the end
        if body_size is not None and body_size < 0:
            return None
        if kind == wanted:
            if body_size is not None and body_size > MAX_MOOV_BYTES:
                return None
            body = file.read(MAX_MOOV_BYTES + 1 if body_size is None else body_size)
            return memoryview(body) if len(body) <= MAX_MOOV_BYTES else None
        if body_size is None:
            return None
        file.seek(body_size, 1)
    return None


def _boxes(buffer: memoryview) -> Iterator[tuple[bytes, memoryview]]:
    """(type, body) of each box in `buffer`; stops at the first malformed one."""
    offset = 0
    while offset + _BOX.size <= len(buffer):
        size, kind = _BOX.unpack_from(buffer, offset)
        header_size = _BOX.size
        if size == 1:
            if offset + 16 > len(buffer):
                return
            (size,) = _LARGE_SIZE.unpack_from(buffer, offset + 8)
            header_size = 16
        elif size == 0:
            size = len(buffer) - offset
        if size < header_size or offset + size > len(buffer):
            return
        yield bytes(kind), buffer[offset + header_size : offset + size]
        offset += size


def _rotation(tkhd: memoryview) -> int:
    # Version 1 has 64-bit times and duration. After them: reserved (8), layer, alternate
    # group, volume, reserved (2 each), then the 3x3 matrix a b u / c d v / x y w.
    offset = 52 if tkhd[0] == 1 else 40
    if len(tkhd) < offset + _MATRIX.size:
        return 0
    a, b, _u, c, d, *_rest = _MATRIX.unpack_from(tkhd, offset)
    # As libavutil's av_display_rotation_get (a, b, c, d are 16.16 fixed point; only their
    # ratios matter here), which PyAV's frame rotation reports.
    scale_x, scale_y = math.hypot(a, c), math.hypot(b, d)
    if scale_x == 0 or scale_y == 0:
        return 0
    degrees = -math.degrees(math.atan2(b / scale_y, a / scale_x))
    return round(degrees)
