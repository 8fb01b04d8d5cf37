"""The stack's log files: reading the end of one, appending JSON lines to one."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any


def log_tail(path: Path, lines: int = 30) -> str:
    """The last `lines` lines of a log file ('' if there is none); reads at most 64 KB."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 65536))
            data = fh.read()
    except FileNotFoundError:
        return ""
    return "\n".join(data.decode("utf-8", errors="replace").splitlines()[-lines:])


def json_lines(path: Path) -> Callable[[dict[str, Any]], None]:
    """A writer appending each record to `path` as one JSON line (thread-safe)."""
    lock = threading.Lock()
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(record: dict[str, Any]) -> None:
        line = json.dumps(record) + "\n"
        with lock, path.open("a") as fh:
            fh.write(line)

    return write
