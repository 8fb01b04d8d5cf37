"""The floors of the hops the suite uses, measured on the same emulators in the same run:

- push: publish -> a bare HTTP handler fed by a push subscription (the emulator polls);
- listener: a Firestore write -> a listener on a narrow query (how a UI sees a change);
- commit + publish: one commit of three writes (what submit's debit does) and one publish,
  alone (its latency) and from many threads at once (submit's throughput ceiling).
"""

from __future__ import annotations

import base64
import contextlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter
from google.cloud.pubsub_v1 import PublisherClient, SubscriberClient
from google.cloud.pubsub_v1.types import BatchSettings

from tools.stack.processes import LOCALHOST, free_port

Progress = Callable[[str], None]
FLOOR_COLLECTION = "bench_floor"
WAIT_SECONDS = 10.0


class _Arrivals:
    def __init__(self) -> None:
        self._lock = threading.Condition()
        self.at: dict[str, float] = {}

    def mark(self, key: str) -> None:
        now = time.perf_counter()
        with self._lock:
            self.at.setdefault(key, now)
            self._lock.notify_all()

    def wait(self, key: str, timeout: float = WAIT_SECONDS) -> float:
        deadline = time.monotonic() + timeout
        with self._lock:
            while key not in self.at:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"floor sample {key} never arrived")
                self._lock.wait(left)
            return self.at[key]


@contextlib.contextmanager
def _push_receiver(arrivals: _Arrivals) -> Iterator[int]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with contextlib.suppress(ValueError, KeyError):
                data = json.loads(base64.b64decode(json.loads(body)["message"]["data"]))
                arrivals.mark(str(data["key"]))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    port = free_port()
    server = ThreadingHTTPServer((LOCALHOST, port), Handler)
    thread = threading.Thread(target=server.serve_forever, name="floor-push", daemon=True)
    thread.start()
    try:
        yield port
    finally:
        server.shutdown()
        server.server_close()


def publisher() -> PublisherClient:
    # As the suite builds it (shared.core.clients.publisher_client): no batching window.
    return PublisherClient(batch_settings=BatchSettings(max_messages=1))


def push_floor(project: str, samples: int) -> list[float]:
    """Seconds from publish to a bare handler's receipt, one message at a time."""
    topic_id = f"bench-floor-{uuid.uuid4().hex[:6]}"
    pub, sub = publisher(), SubscriberClient()
    topic = pub.topic_path(project, topic_id)
    subscription = sub.subscription_path(project, f"{topic_id}-push")
    arrivals = _Arrivals()
    latencies = []
    with _push_receiver(arrivals) as port:
        pub.create_topic(name=topic)
        sub.create_subscription(
            request={
                "name": subscription,
                "topic": topic,
                "push_config": {"push_endpoint": f"http://{LOCALHOST}:{port}/push"},
                "ack_deadline_seconds": 10,
            }
        )
        try:
            for index in range(samples + 1):  # the first one warms the path up
                key = f"{index}"
                started = time.perf_counter()
                pub.publish(topic, json.dumps({"key": key}).encode()).result(timeout=WAIT_SECONDS)
                arrived = arrivals.wait(key)
                if index:
                    latencies.append(arrived - started)
        finally:
            with contextlib.suppress(gexc.GoogleAPICallError):
                sub.delete_subscription(subscription=subscription)
                pub.delete_topic(topic=topic)
    return latencies


def listener_floor(db: firestore.Client, samples: int) -> list[float]:
    """Seconds from a write's start to a narrow listener's callback seeing it."""
    owner = f"floor-{uuid.uuid4().hex[:6]}"
    arrivals = _Arrivals()
    attached = threading.Event()

    def on_snapshot(_docs: Any, changes: Any, _read_time: Any) -> None:
        attached.set()
        for change in changes:
            arrivals.mark(change.document.id)

    query = db.collection(FLOOR_COLLECTION).where(filter=FieldFilter("owner", "==", owner))
    watch = query.on_snapshot(on_snapshot)
    try:
        if not attached.wait(WAIT_SECONDS):
            raise TimeoutError("the floor listener did not attach")
        latencies = []
        for index in range(samples + 1):
            doc_id = f"{owner}-{index}"
            started = time.perf_counter()
            db.collection(FLOOR_COLLECTION).document(doc_id).set({"owner": owner, "i": index})
            arrived = arrivals.wait(doc_id)
            if index:
                latencies.append(arrived - started)
        return latencies
    finally:
        watch.unsubscribe()  # type: ignore[no-untyped-call]


def _commit_and_publish(db: firestore.Client, pub: PublisherClient, topic: str, user: str) -> None:
    creation_id = uuid.uuid4().hex
    batch = db.batch()
    batch.set(db.document(f"users/{user}"), {"tokens": firestore.Increment(-1)}, merge=True)
    batch.create(db.document(f"users/{user}/ledger/debit:{creation_id}"), {"amount": -1})
    batch.create(
        db.document(f"creations/{creation_id}"),
        {"user_id": user, "status": "pending", "created_at": firestore.SERVER_TIMESTAMP},
    )
    batch.commit()
    pub.publish(topic, json.dumps({"creation_id": creation_id}).encode()).result(
        timeout=WAIT_SECONDS
    )


def commit_publish_floor(
    db: firestore.Client, project: str, *, samples: int, threads: int, per_thread: int
) -> tuple[list[float], float]:
    """(latencies of `samples` lone commit + publish rounds, rounds/s from `threads` threads
    doing `per_thread` each, released together)."""
    pub = publisher()
    topic = pub.topic_path(project, f"bench-floor-sink-{uuid.uuid4().hex[:6]}")
    pub.create_topic(name=topic)
    try:
        _commit_and_publish(db, pub, topic, "floor-warm")
        latencies = []
        for _ in range(samples):
            started = time.perf_counter()
            _commit_and_publish(db, pub, topic, "floor-alone")
            latencies.append(time.perf_counter() - started)
        barrier = threading.Barrier(threads + 1)
        errors: list[BaseException] = []

        def loop(user: str) -> None:
            barrier.wait()
            try:
                for _ in range(per_thread):
                    _commit_and_publish(db, pub, topic, user)
            except BaseException as exc:  # reported below
                errors.append(exc)

        workers = [
            threading.Thread(target=loop, args=(f"floor-{i}",), daemon=True) for i in range(threads)
        ]
        for worker in workers:
            worker.start()
        started = time.perf_counter()
        barrier.wait()
        for worker in workers:
            worker.join()
        elapsed = time.perf_counter() - started
        if errors:
            raise RuntimeError(f"the commit + publish loop failed: {errors[0]}")
        return latencies, threads * per_thread / elapsed
    finally:
        with contextlib.suppress(gexc.GoogleAPICallError):
            pub.delete_topic(topic=topic)
