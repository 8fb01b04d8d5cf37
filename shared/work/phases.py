"""How long each phase of one job took, for the one line the worker logs per job.

    with timing_job() as job:
        with phase("claim"):
            ...
        ...
    job.fields()  # {"claim_ms": 3.1, ..., "finish_ms": 4.0, "total_ms": 12.6}

`phase(name)` times its block into the job being timed in this context (and does nothing
outside one, so the code it wraps runs the same in a test that times nothing). A phase entered
twice adds up. `finish` is what follows the last timed phase: the write of the result and what
comes after it, up to the end of the job.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

Clock = Callable[[], float]


@dataclass
class JobPhases:
    clock: Clock = time.monotonic
    started: float = field(init=False)
    last_end: float = field(init=False)
    seconds: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.started = self.last_end = self.clock()

    def add(self, name: str, began: float) -> None:
        self.last_end = self.clock()
        self.seconds[name] = self.seconds.get(name, 0.0) + self.last_end - began

    def fields(self, *, rest: str = "finish") -> dict[str, float]:
        """`<phase>_ms` for each timed phase, `<rest>_ms` for the time after the last one (when
        some phase was timed), and `total_ms`, in milliseconds (0.1 ms)."""
        now = self.clock()
        seconds = dict(self.seconds)
        if seconds:
            seconds[rest] = seconds.get(rest, 0.0) + now - self.last_end
        seconds["total"] = now - self.started
        return {f"{name}_ms": round(value * 1000, 1) for name, value in seconds.items()}


_current: ContextVar[JobPhases | None] = ContextVar("job_phases", default=None)


@contextmanager
def timing_job(clock: Clock = time.monotonic) -> Iterator[JobPhases]:
    """Time the phases of one job inside the block."""
    job = JobPhases(clock)
    token = _current.set(job)
    try:
        yield job
    finally:
        _current.reset(token)


@contextmanager
def phase(name: str) -> Iterator[None]:
    """Time the block as phase `name` of the job being timed, if there is one."""
    job = _current.get()
    began = job.clock() if job is not None else 0.0
    try:
        yield
    finally:
        if job is not None:
            job.add(name, began)
