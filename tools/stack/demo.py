"""`make demo`: the whole event chain, against the running `make dev`, watched as it happens.

A fresh user gets tokens; an image (2 pictures) and a 4-second video are submitted over HTTP
with a dev ID token, exactly as a client would; each creation is followed with a Firestore
`on_snapshot` listener on its document (as a UI would, no polling) and every status or progress
change is printed when it arrives. The drafts' media are then checked in Cloud Storage. Last, a
request the offline provider is told to fail (`[fail:permanent]`) must end `failed`, refunded,
with the balance back where it was.

Exit status 0 only if all of that happened within DEMO_TIMEOUT_SECONDS (default 120); otherwise
1, with what was seen. Needs `make dev` running (else a one-line error, exit 1).
"""

from __future__ import annotations

import contextlib
import os
import queue
import secrets
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import requests

from shared.creations.lifecycle import FINAL_STATUSES
from tools.stack.cli import CliError, require_stack, stack_settings
from tools.stack.dev import AUTH_DIR
from tools.stack.devauth import load_or_create_signer

DEFAULT_TIMEOUT: Final = 120.0
GRANT: Final = 30
IMAGE_COUNT: Final = 2
IMAGE_REQUEST: Final = {"type": "image", "prompt": "a lighthouse at dusk", "count": IMAGE_COUNT}
VIDEO_REQUEST: Final = {"type": "video", "prompt": "waves on a shore", "duration_seconds": 4}
FAILING_REQUEST: Final = {"type": "image", "prompt": "a storm [fail:permanent]"}
# `make demo` needs every function, and the trigger router, of the running stack.
REQUIRED_PORTS: Final = ("submit", "generate", "refund", "dead_letter", "sweep", "stitch", "router")
# More clips for the reel, in other shapes, so it shows the normalising (re-encode) path.
REEL_CLIP_REQUESTS: Final = (
    {"type": "video", "prompt": "a city at night", "duration_seconds": 4, "aspect_ratio": "9:16"},
    {"type": "video", "prompt": "a forest in fog", "duration_seconds": 4, "aspect_ratio": "1:1"},
)


class DemoError(Exception):
    """The demo cannot go on; reported in one line with what was seen."""


class Clock:
    """Timestamps for the printed lines: wall time and seconds since the demo started."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.deadline = self.t0

    def stamp(self, wall: float | None = None) -> str:
        wall = time.time() if wall is None else wall
        local = time.strftime("%H:%M:%S", time.localtime(wall))
        elapsed = time.monotonic() - self.t0 - (time.time() - wall)
        return f"{local}.{int(wall % 1 * 1000):03d} +{elapsed:6.2f}s"

    def left(self) -> float:
        return self.deadline - time.monotonic()


def say(clock: Clock, message: str) -> None:
    print(f"[{clock.stamp()}] {message}", flush=True)


# --- following creations with listeners ---------------------------------------------------------


@dataclass
class Followed:
    label: str
    creation_id: str
    state: dict[str, Any] | None = None  # the latest snapshot's data
    history: list[str] = field(default_factory=list)


def _summary(data: dict[str, Any] | None) -> tuple[Any, ...]:
    """The part of a creation whose changes are worth a line."""
    if data is None:
        return ("(no document)",)
    error = data.get("error") or {}
    return (
        data.get("status"),
        data.get("progress"),
        bool(data.get("refunded")),
        error.get("code") if isinstance(error, dict) else error,
    )


def describe(data: dict[str, Any] | None) -> str:
    if data is None:
        return "(document missing)"
    text = f"{data.get('status', '?'):<10} progress {data.get('progress', '?'):>3}"
    if data.get("refunded"):
        text += "  refunded"
    error = data.get("error")
    if isinstance(error, dict) and error:
        text += f"  error {error.get('code')}: {error.get('message')}"
    return text


class Watcher:
    """`on_snapshot` listeners on single creation documents.

    The listener callbacks run on the client's threads; they only queue what they got. The main
    thread prints from the queue, so lines come out whole and in arrival order.
    """

    def __init__(self, db: Any, clock: Clock) -> None:
        self._db = db
        self._clock = clock
        self._events: queue.Queue[tuple[float, str, dict[str, Any] | None]] = queue.Queue()
        self._watches: list[Any] = []
        self.followed: dict[str, Followed] = {}

    def follow(self, label: str, creation_id: str) -> Followed:
        followed = Followed(label, creation_id)
        self.followed[label] = followed

        def on_snapshot(docs: list[Any], _changes: Any, _read_time: Any) -> None:
            for doc in docs:
                self._events.put((time.time(), label, doc.to_dict() if doc.exists else None))

        ref = self._db.collection("creations").document(creation_id)
        self._watches.append(ref.on_snapshot(on_snapshot))
        return followed

    def until(self, done: Callable[[Followed], bool], labels: list[str]) -> None:
        """Print changes as they arrive until `done` holds for every label, or the deadline."""
        while not all(done(self.followed[label]) for label in labels):
            left = self._clock.left()
            if left <= 0:
                pending = [
                    f"{label}: "
                    + (describe(followed.state) if followed.history else "nothing seen yet")
                    for label, followed in self.followed.items()
                    if label in labels and not done(followed)
                ]
                raise DemoError("the deadline passed while waiting for " + "; ".join(pending))
            try:
                self._show(*self._events.get(timeout=min(left, 0.5)))
            except queue.Empty:
                continue

    def pump(self) -> None:
        """Print what has arrived so far, without waiting (keeps the output in time order)."""
        while True:
            try:
                self._show(*self._events.get_nowait())
            except queue.Empty:
                return

    def _show(self, wall: float, label: str, data: dict[str, Any] | None) -> None:
        followed = self.followed[label]
        if followed.state is None or _summary(followed.state) != _summary(data):
            line = f"{label:<6} {followed.creation_id[:8]}  {describe(data)}"
            followed.history.append(line)
            print(f"[{self._clock.stamp(wall)}] {line}", flush=True)
        followed.state = data

    def close(self) -> None:
        for watch in self._watches:
            with contextlib.suppress(Exception):
                watch.unsubscribe()
        self._watches.clear()


def is_final(followed: Followed) -> bool:
    return bool(followed.state) and (followed.state or {}).get("status") in FINAL_STATUSES


def is_settled_failure(followed: Followed) -> bool:
    """Failed and refunded (the refund lands just after the status moves)."""
    state = followed.state or {}
    if state.get("status") in FINAL_STATUSES - {"failed"}:
        return True  # a wrong ending: stop waiting, the checks report it
    return state.get("status") == "failed" and bool(state.get("refunded"))


# --- the demo ------------------------------------------------------------------------------------


@dataclass
class Demo:
    clock: Clock
    submit_url: str
    token: str
    user: str
    ledger: Any
    storage: Any
    watcher: Watcher
    problems: list[str] = field(default_factory=list)

    def check(self, ok: bool, message: str) -> bool:
        if not ok:
            self.problems.append(message)
            say(self.clock, f"PROBLEM: {message}")
        return ok

    def submit(self, body: Mapping[str, Any], path: str = "/v1/creations") -> dict[str, Any]:
        response = requests.post(
            f"{self.submit_url}{path}",
            json=dict(body),
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=min(30.0, max(1.0, self.clock.left())),
        )
        self.watcher.pump()  # what the listeners saw during the call comes first
        if response.status_code != 202:
            raise DemoError(
                f"POST {path} {body} answered {response.status_code}: {response.text[:300]}"
            )
        created: dict[str, Any] = response.json()
        say(
            self.clock,
            f"submitted {created['type']} {created['id'][:8]}: 202, status {created['status']}, "
            f"cost {created['cost']}, balance now {created['balance']}",
        )
        return created

    def check_media(self, label: str, creation: dict[str, Any], expected: int) -> None:
        media = creation.get("media") or []
        self.check(len(media) == expected, f"{label}: {len(media)} media items, not {expected}")
        for index, item in enumerate(media):
            uri = str(item.get("uri", ""))
            size = f"{item.get('width')}x{item.get('height')}"
            duration = item.get("duration_seconds")
            print(
                f"    {label} #{index}: {uri}\n"
                f"        {item.get('content_type')}, {item.get('bytes')} bytes, {size}"
                + (f", {duration} s" if duration is not None else ""),
                flush=True,
            )
            self.check(
                bool(item.get("content_type")) and int(item.get("bytes") or 0) > 0,
                f"{label} #{index}: no content type or size",
            )
            self.check(
                bool(item.get("width")) and bool(item.get("height")),
                f"{label} #{index}: no width/height",
            )
            if creation.get("type") == "video":
                self.check(bool(duration), f"{label} #{index}: a video without a duration")
            self.check_object(label, index, item)

    def check_object(self, label: str, index: int, item: Mapping[str, Any]) -> None:
        uri = str(item.get("uri", ""))
        bucket_name, _, name = uri.removeprefix("gs://").partition("/")
        if not self.check(
            uri.startswith("gs://") and bool(name), f"{label} #{index}: {uri!r} is not gs://"
        ):
            return
        blob = self.storage.bucket(bucket_name).get_blob(name)
        if not self.check(blob is not None, f"{label} #{index}: {uri} is not in Cloud Storage"):
            return
        same = blob.size == item.get("bytes") and blob.content_type == item.get("content_type")
        verdict = "in the GCS emulator" + (
            "" if same else f" but {blob.size} bytes, {blob.content_type}"
        )
        print(f"        {verdict}", flush=True)
        self.check(same, f"{label} #{index}: the stored object differs from its media entry")


def run(environ: Mapping[str, str]) -> int:
    clock = Clock()
    try:
        timeout = float(environ.get("DEMO_TIMEOUT_SECONDS") or DEFAULT_TIMEOUT)
    except ValueError:
        print("make demo: DEMO_TIMEOUT_SECONDS must be a number of seconds", file=sys.stderr)
        return 1
    clock.deadline = clock.t0 + timeout
    try:
        stack = require_stack()
    except CliError as exc:
        print(f"make demo: {exc}", file=sys.stderr)
        return 1
    missing = [key for key in REQUIRED_PORTS if key not in stack.get("ports", {})]
    if missing:
        print(
            f"make demo: the running `make dev` has no {', '.join(missing)} (it predates the "
            "event chain); restart it",
            file=sys.stderr,
        )
        return 1
    from shared.core.clients import firestore_client, storage_client
    from shared.money.ledger import Ledger
    from shared.wiring import documents

    settings = stack_settings(stack)
    db = firestore_client(settings)
    user = f"demo-{secrets.token_hex(4)}"
    token = load_or_create_signer(AUTH_DIR).mint(user, settings.gcp_project)
    watcher = Watcher(db, clock)
    demo = Demo(
        clock=clock,
        submit_url=stack["env"]["SUBMIT_URL"],
        token=token,
        user=user,
        ledger=Ledger(documents(settings), settings),
        storage=storage_client(settings),
        watcher=watcher,
    )
    say(clock, f"demo against {demo.submit_url}, project {settings.gcp_project}, user {user}")
    try:
        with _closing(watcher):
            _run_steps(demo)
    except DemoError as exc:
        demo.problems.append(str(exc))
        say(clock, f"PROBLEM: {exc}")
    except (requests.RequestException, OSError) as exc:
        demo.problems.append(f"{type(exc).__name__}: {exc}")
        say(clock, f"PROBLEM: {type(exc).__name__}: {exc}")

    if demo.problems:
        print(f"\nmake demo FAILED ({len(demo.problems)} problems):", file=sys.stderr)
        for problem in demo.problems:
            print(f"  - {problem}", file=sys.stderr)
        for followed in watcher.followed.values():
            print(f"  {followed.label} {followed.creation_id} went:", file=sys.stderr)
            for line in followed.history or ["(nothing seen)"]:
                print(f"      {line}", file=sys.stderr)
        logs = stack.get("logs", {})
        where = sorted({str(Path(path).parent) for path in logs.values()}) or [".dev/logs"]
        print(f"  the functions' logs are in {', '.join(where)}/", file=sys.stderr)
        return 1
    say(clock, f"demo passed in {time.monotonic() - clock.t0:.1f} s")
    return 0


@contextlib.contextmanager
def _closing(watcher: Watcher) -> Iterator[None]:
    try:
        yield
    finally:
        watcher.close()


def _run_steps(demo: Demo) -> None:
    clock, ledger, user, watcher = demo.clock, demo.ledger, demo.user, demo.watcher

    print("\n== 1. tokens", flush=True)
    balance = ledger.grant(user, GRANT)
    say(clock, f"granted {GRANT} tokens to {user}; balance {balance}")

    print("\n== 2. an image (2 pictures) and a 4 s video, followed live", flush=True)
    image = demo.submit(IMAGE_REQUEST)
    watcher.follow("image", image["id"])
    video = demo.submit(VIDEO_REQUEST)
    watcher.follow("video", video["id"])
    watcher.until(is_final, ["image", "video"])

    print("\n== 3. the drafts' media", flush=True)
    for label, expected in (("image", IMAGE_COUNT), ("video", 1)):
        state = watcher.followed[label].state or {}
        if demo.check(
            state.get("status") == "draft",
            f"{label} ended {state.get('status')!r}, not 'draft': {describe(state)}",
        ):
            demo.check(state.get("progress") == 100, f"{label}: progress {state.get('progress')}")
            demo.check(not state.get("refunded"), f"{label}: a draft was refunded")
            demo.check_media(label, state, expected)

    print("\n== 4. a request the provider fails: failed, refunded, balance restored", flush=True)
    before = ledger.balance(user)
    say(clock, f"balance before: {before}")
    failing = demo.submit(FAILING_REQUEST)
    watcher.follow("fail", failing["id"])
    watcher.until(is_settled_failure, ["fail"])
    state = watcher.followed["fail"].state or {}
    error = state.get("error") or {}
    if demo.check(state.get("status") == "failed", f"fail ended {describe(state)}"):
        say(clock, f"error code {error.get('code')!r}, message {error.get('message')!r}")
        demo.check(bool(error.get("code")) and bool(error.get("message")), "no error code/message")
        demo.check(state.get("refunded") is True, "the failed creation is not refunded")
    after = ledger.balance(user)
    say(clock, f"balance before {before}, after submit {failing['balance']}, after refund {after}")
    demo.check(after == before, f"the balance is {after}, not restored to {before}")

    print(
        "\n== 5. Reel Maker: two more clips, then one reel of all three, followed live", flush=True
    )
    clips = [video["id"]]
    for index, request in enumerate(REEL_CLIP_REQUESTS):
        clip = demo.submit(request)
        watcher.follow(f"clip{index + 2}", clip["id"])
        clips.append(clip["id"])
    watcher.until(is_final, [f"clip{i + 2}" for i in range(len(REEL_CLIP_REQUESTS))])
    lengths = []
    for index in range(len(clips)):
        label = "video" if index == 0 else f"clip{index + 1}"
        state = watcher.followed[label].state or {}
        if not demo.check(state.get("status") == "draft", f"{label} is not a draft"):
            return
        lengths.append(float(state["media"][0]["duration_seconds"]))
    reel = demo.submit({"clips": clips, "title": "demo reel"}, path="/v1/reels")
    watcher.follow("reel", reel["id"])
    watcher.until(is_final, ["reel"])
    state = watcher.followed["reel"].state or {}
    if demo.check(state.get("status") == "draft", f"reel ended {describe(state)}"):
        demo.check_media("reel", state, 1)
        got = float(state["media"][0].get("duration_seconds") or 0)
        say(clock, f"reel is {got:.2f} s; its clips add up to {sum(lengths):.2f} s")
        demo.check(abs(got - sum(lengths)) < 0.5, "the reel's duration is not the sum of its clips")


def main() -> int:
    try:
        return run(os.environ)
    except KeyboardInterrupt:
        print("make demo: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
