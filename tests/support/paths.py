"""Where things are in the repository, for tests that read or run its files."""

from __future__ import annotations

from pathlib import Path
from typing import Final

REPO: Final = Path(__file__).resolve().parents[2]
FUNCTIONS: Final = REPO / "functions"
SUBMIT_SOURCE: Final = FUNCTIONS / "submit" / "main.py"


def function_source(name: str) -> Path:
    """functions/<name>/main.py"""
    return FUNCTIONS / name / "main.py"
