"""Cold-start import time: a function's `import main` in a fresh interpreter, against importing
only the libraries its requirements.txt names (what is the function's own is the difference).
Best of N runs; the counting hook is off (no BENCH_COUNTS_DIR)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

from tools.stack.processes import REPO_ROOT

# Distribution name (lower case) -> the module to import for it; others import their name
# with dashes as underscores.
IMPORT_NAMES: Mapping[str, str] = {
    "google-cloud-firestore": "google.cloud.firestore",
    "google-cloud-pubsub": "google.cloud.pubsub_v1",
    "google-cloud-storage": "google.cloud.storage",
    "google-cloud-logging": "google.cloud.logging",
    "google-events": "google.events.cloud.firestore",
    "google-genai": "google.genai",
    "pyjwt": "jwt",
    "pillow": "PIL.Image",
    "cryptography": "cryptography.x509",
}

# What a baseline process imports first: gunicorn's app, the Celery worker's tasks.
BASELINE_ENTRY_MODULES = ("api", "tasks")

_TIMER = (
    "import sys, time\n"
    "sys.path.insert(0, '.')\n"
    "t = time.perf_counter()\n"
    "{imports}\n"
    "print(time.perf_counter() - t)\n"
)


def requirement_modules(requirements: Path) -> list[str]:
    modules = []
    for line in requirements.read_text().splitlines():
        name = re.split(r"[=<>!~\[; ]", line.strip(), maxsplit=1)[0].lower()
        if name and not name.startswith("#"):
            modules.append(IMPORT_NAMES.get(name, name.replace("-", "_")))
    return modules


def clean_env(base: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in base.items() if not k.startswith("BENCH_")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def best_import_seconds(
    modules: Sequence[str], cwd: Path, env: Mapping[str, str], runs: int
) -> float | None:
    """Best of `runs` fresh-interpreter imports of `modules`; None if the import fails."""
    code = _TIMER.format(imports="\n".join(f"import {m}" for m in modules))
    best: float | None = None
    for _ in range(runs):
        done = subprocess.run(  # noqa: S603 - our own interpreter and code
            [sys.executable, "-c", code],
            cwd=cwd,
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            return None
        seconds = float(done.stdout.strip().splitlines()[-1])
        best = seconds if best is None else min(best, seconds)
    return best


def suite_cold_starts(
    runs: int, base: Mapping[str, str], only: Collection[str] | None = None
) -> dict[str, dict[str, float | None]]:
    env = clean_env(base)
    out: dict[str, dict[str, float | None]] = {}
    for folder in sorted((REPO_ROOT / "functions").iterdir()):
        if not (folder / "main.py").is_file() or (only is not None and folder.name not in only):
            continue
        libraries = requirement_modules(folder / "requirements.txt")
        out[folder.name] = {
            "main": best_import_seconds(["main"], folder, env, runs),
            "libraries": best_import_seconds(libraries, folder, env, runs),
        }
    return out


def baseline_cold_starts(
    runs: int, base: Mapping[str, str], only: Collection[str] | None = None
) -> dict[str, dict[str, float | None]]:
    """The baseline's entry modules (its API app, its Celery tasks), against its requirements."""
    folder = REPO_ROOT / "benchmarks" / "baseline"
    requirements = folder / "requirements.txt"
    if not requirements.is_file():
        return {}
    env = clean_env(base)
    libraries = requirement_modules(requirements)
    libraries_seconds: float | None = None
    out: dict[str, dict[str, float | None]] = {}
    for entry in BASELINE_ENTRY_MODULES:
        if not (folder / f"{entry}.py").is_file() or (only is not None and entry not in only):
            continue
        module = f"benchmarks.baseline.{entry}"
        if not out:  # the libraries once, for the first entry measured
            libraries_seconds = best_import_seconds(libraries, REPO_ROOT, env, runs)
        out[entry] = {
            "main": best_import_seconds([module], REPO_ROOT, env, runs),
            "libraries": libraries_seconds,
        }
    return out
