"""Reading the counting hook's files (`BENCH_COUNTS_DIR/<pid>.json`) and adding them up."""

from __future__ import annotations

import contextlib
import json
import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

HOOK_DIR: Final = Path(__file__).resolve().parent
COUNTS_DIR_VARIABLE: Final = "BENCH_COUNTS_DIR"
ROLE_VARIABLE: Final = "BENCH_ROLE"


@dataclass(frozen=True)
class ProcessCounts:
    pid: int
    role: str
    counts: Mapping[str, int] = field(default_factory=dict)


Snapshot = dict[int, ProcessCounts]


def hook_env(base: Mapping[str, str], counts_dir: Path) -> dict[str, str]:
    """`base` with the hook's folder first on PYTHONPATH and BENCH_COUNTS_DIR set."""
    out = dict(base)
    paths = [p for p in out.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(HOOK_DIR)]
    out["PYTHONPATH"] = os.pathsep.join([str(HOOK_DIR), *paths])
    out[COUNTS_DIR_VARIABLE] = str(counts_dir)
    return out


def read_counts(directory: Path) -> Snapshot:
    """Every process's last flushed counts (a file being replaced is read on the next call)."""
    found: Snapshot = {}
    if not directory.is_dir():
        return found
    for path in directory.glob("*.json"):
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            record = json.loads(path.read_text())
            pid = int(record["pid"])
            counts = {str(k): int(v) for k, v in dict(record["counts"]).items()}
            found[pid] = ProcessCounts(pid=pid, role=str(record["role"]), counts=counts)
    return found


def delta(before: Snapshot, after: Snapshot) -> dict[str, Counter[str]]:
    """What happened between two snapshots, by role (a process new since `before` counts
    from zero)."""
    by_role: dict[str, Counter[str]] = {}
    for pid, now in after.items():
        then = before.get(pid)
        grown: Counter[str] = Counter(now.counts)
        if then is not None:
            grown.subtract(then.counts)
        by_role.setdefault(now.role, Counter()).update(+grown)
    return by_role


def total(by_role: Mapping[str, Counter[str]]) -> Counter[str]:
    out: Counter[str] = Counter()
    for counts in by_role.values():
        out.update(counts)
    return out
