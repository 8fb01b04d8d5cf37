"""Percentiles of latency samples (nearest rank: a reported p99 is a value that was seen)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TypedDict


class Summary(TypedDict):
    n: int
    p50: float
    p90: float
    p99: float
    mean: float
    max: float


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        raise ValueError("no samples")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def summarize(values: Sequence[float]) -> Summary:
    """p50/p90/p99/mean/max of `values` (seconds in, milliseconds out)."""
    ms = [v * 1000 for v in values]
    if not ms:
        return Summary(n=0, p50=math.nan, p90=math.nan, p99=math.nan, mean=math.nan, max=math.nan)
    return Summary(
        n=len(ms),
        p50=percentile(ms, 50),
        p90=percentile(ms, 90),
        p99=percentile(ms, 99),
        mean=sum(ms) / len(ms),
        max=max(ms),
    )
