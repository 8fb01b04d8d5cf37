"""The load: creations submitted over HTTP as a client would, one at a time or in a burst."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import requests

from benchmarks.harness.watch import CreationWatcher, Seen

Progress = Callable[[str], None]
IMAGE_BODY = {"type": "image", "prompt": "a lighthouse at dusk"}
SUBMIT_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class Submitted:
    creation_id: str
    user: str
    started: float  # perf_counter before the POST
    accepted: float  # perf_counter when the 202 arrived


@dataclass
class PhaseResult:
    """One phase's creations, when they were submitted, accepted and seen final."""

    submitted: list[Submitted] = field(default_factory=list)
    seen: dict[str, Seen] = field(default_factory=dict)
    released: float = 0.0  # perf_counter when the phase began

    def accept_latencies(self) -> list[float]:
        return [s.accepted - s.started for s in self.submitted]

    def draft_latencies(self) -> list[float]:
        return [
            self.seen[s.creation_id].at - s.started
            for s in self.submitted
            if s.creation_id in self.seen and self.seen[s.creation_id].status == "draft"
        ]

    def statuses(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.submitted:
            status = self.seen[s.creation_id].status if s.creation_id in self.seen else "unseen"
            out[status] = out.get(status, 0) + 1
        return out

    def span_to_last_final(self) -> float:
        return max(seen.at for seen in self.seen.values()) - self.released

    def span_to_last_accept(self) -> float:
        return max(s.accepted for s in self.submitted) - self.released


class Submitter:
    """POSTs image creations to `{url}/v1/creations` for users whose tokens it mints."""

    def __init__(self, url: str, token_for: Callable[[str], str]) -> None:
        self.url = url.rstrip("/") + "/v1/creations"
        self._token_for = token_for
        self._tokens: dict[str, str] = {}
        self._lock = threading.Lock()

    def headers(self, user: str) -> dict[str, str]:
        with self._lock:
            if user not in self._tokens:
                self._tokens[user] = self._token_for(user)
            return {"Authorization": f"Bearer {self._tokens[user]}"}

    def submit(self, session: requests.Session, user: str) -> Submitted:
        headers = self.headers(user)
        started = time.perf_counter()
        response = session.post(
            self.url, json=IMAGE_BODY, headers=headers, timeout=SUBMIT_TIMEOUT_SECONDS
        )
        accepted = time.perf_counter()
        if response.status_code != 202:
            raise RuntimeError(f"submit answered {response.status_code}: {response.text[:300]}")
        return Submitted(str(response.json()["id"]), user, started, accepted)


def run_sequential(
    submitter: Submitter,
    watcher: CreationWatcher,
    user: str,
    count: int,
    *,
    timeout: float,
    progress: Progress,
) -> PhaseResult:
    """`count` creations, each submitted once the one before it was seen final."""
    result = PhaseResult(released=time.perf_counter())
    with requests.Session() as session:
        for index in range(count):
            submitted = submitter.submit(session, user)
            result.submitted.append(submitted)
            result.seen.update(watcher.wait([submitted.creation_id], timeout))
            if (index + 1) % max(1, count // 5) == 0 or index + 1 == count:
                progress(f"  sequential: {index + 1}/{count} final")
    return result


def run_burst(
    submitter: Submitter,
    watcher: CreationWatcher,
    users: list[str],
    per_user: int,
    *,
    timeout: float,
    progress: Progress,
) -> PhaseResult:
    """Every user submits `per_user` creations back to back, all users released together."""
    barrier = threading.Barrier(len(users) + 1)
    lock = threading.Lock()
    result = PhaseResult()
    errors: list[BaseException] = []
    for user in users:
        submitter.headers(user)  # minted before the clock starts

    def one_user(user: str) -> None:
        with requests.Session() as session:
            barrier.wait()
            try:
                for _ in range(per_user):
                    submitted = submitter.submit(session, user)
                    with lock:
                        result.submitted.append(submitted)
            except BaseException as exc:  # reported by the main thread
                with lock:
                    errors.append(exc)

    threads = [
        threading.Thread(target=one_user, args=(u,), name=f"burst-{u}", daemon=True) for u in users
    ]
    for thread in threads:
        thread.start()
    result.released = time.perf_counter()
    barrier.wait()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"{len(errors)} burst submits failed; first: {errors[0]}")
    progress(
        f"  burst: {len(result.submitted)} accepted in {result.span_to_last_accept():.1f} s, "
        "waiting for the drafts ..."
    )
    ids = [s.creation_id for s in result.submitted]
    deadline = time.monotonic() + timeout
    while True:
        try:
            result.seen.update(watcher.wait(ids, min(5.0, max(0.1, deadline - time.monotonic()))))
            return result
        except TimeoutError:
            if time.monotonic() >= deadline:
                raise
            final = sum(1 for i in ids if i in watcher.seen)
            progress(f"  burst: {final}/{len(ids)} final")
