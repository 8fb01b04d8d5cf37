"""What the numbers were measured on: machine, load, versions, date."""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.metadata
import json
import os
import platform
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import psutil

from tools.stack.emulators import sdk_root

LIBRARIES = (
    "functions-framework",
    "google-cloud-firestore",
    "google-cloud-pubsub",
    "google-cloud-storage",
    "grpcio",
    "pydantic",
    "flask",
    "gunicorn",
    "celery",
    "redis",
    "pillow",
)


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    load = os.getloadavg()
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "load_average": [round(x, 2) for x in load],
        "os": f"{platform.system()} {platform.release()}",
    }


def _run(argv: list[str]) -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(  # noqa: S603 - fixed argv
            argv, capture_output=True, text=True, timeout=20, check=False
        )
        return (done.stdout + done.stderr).strip()
    return ""


def component_version(component: str) -> str | None:
    """A gcloud component's version, from the SDK's install snapshot."""
    snapshot = sdk_root() / ".install" / f"{component}.snapshot.json"
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        for entry in json.loads(snapshot.read_text())["components"]:
            if entry["id"] == component:
                return str(entry["version"]["version_string"])
    return None


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    out["pubsub-emulator"] = component_version("pubsub-emulator")
    out["firestore-emulator"] = component_version("cloud-firestore-emulator")
    gcloud = shutil.which("gcloud")
    sdk = None
    with contextlib.suppress(OSError):
        sdk = (sdk_root() / "VERSION").read_text().strip() or None
    out["gcloud-sdk"] = sdk if sdk else (None if gcloud is None else "?")
    redis = shutil.which("redis-server")
    text = _run([redis, "--version"]) if redis else ""
    found = re.search(r"v=([\d.]+)", text)
    out["redis-server"] = found.group(1) if found else None
    java = _run(["java", "-version"]) if shutil.which("java") else ""
    found = re.search(r'version "([^"]+)"', java)
    out["java"] = found.group(1) if found else None
    return out


def now_utc() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
