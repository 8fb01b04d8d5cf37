"""CPU-seconds spent by a set of processes (and their children) between two moments, and by
the server threads of this process (the trigger router runs in the harness)."""

from __future__ import annotations

import contextlib
import http.server
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import psutil

CpuSample = dict[int, float]  # pid -> user + system seconds, reaped children included


def _seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    # children_*: children this process has waited for, so a worker that exited is not lost.
    return float(times.user + times.system + times.children_user + times.children_system)


def with_children(pids: Iterable[int]) -> list[psutil.Process]:
    found: dict[int, psutil.Process] = {}
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(pid)
            found[root.pid] = root
            for child in root.children(recursive=True):
                found[child.pid] = child
    return list(found.values())


def sample(pids: Iterable[int]) -> CpuSample:
    out: CpuSample = {}
    for process in with_children(pids):
        with contextlib.suppress(psutil.Error):
            out[process.pid] = _seconds(process)
    return out


def spent(before: CpuSample, after: CpuSample) -> float:
    """CPU-seconds between two samples; a process that appeared in between counts whole."""
    return sum(max(0.0, now - before.get(pid, 0.0)) for pid, now in after.items())


def sample_roles(roles: Mapping[str, list[int]]) -> dict[str, CpuSample]:
    return {role: sample(pids) for role, pids in roles.items()}


def spent_by_role(
    before: Mapping[str, CpuSample], after: Mapping[str, CpuSample]
) -> dict[str, float]:
    return {role: spent(before.get(role, {}), now) for role, now in after.items()}


class ServerThreadCpu:
    """CPU time of the HTTP requests served by this process's `http.server` servers, by port.

    The trigger router is a `ThreadingHTTPServer` in this process. `time.thread_time()` around
    each request is the only way to tell its CPU from the load generator's and the listeners'
    in the same process; per request, not per connection, because the emulator keeps one
    connection open for its deliveries.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seconds: dict[int, float] = {}
        self.requests: dict[int, int] = {}

    @contextlib.contextmanager
    def installed(self) -> Iterator[ServerThreadCpu]:
        handler = http.server.BaseHTTPRequestHandler
        original = handler.handle_one_request
        meter = self

        def timed(request_handler: Any) -> None:
            start = time.thread_time()
            try:
                original(request_handler)
            finally:
                port = int(request_handler.server.server_address[1])
                meter._add(port, time.thread_time() - start)

        handler.handle_one_request = timed  # type: ignore[method-assign,assignment]
        try:
            yield self
        finally:
            handler.handle_one_request = original  # type: ignore[method-assign]

    def _add(self, port: int, seconds: float) -> None:
        with self._lock:
            self.seconds[port] = self.seconds.get(port, 0.0) + seconds
            self.requests[port] = self.requests.get(port, 0) + 1

    def of(self, port: int) -> float:
        with self._lock:
            return self.seconds.get(port, 0.0)


def this_process_seconds() -> float:
    times = psutil.Process().cpu_times()
    return float(times.user + times.system)
