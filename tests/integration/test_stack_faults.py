"""Faults injected into the running local stack, and what the suite makes of them.

One whole stack (every function its own process, push subscriptions, the trigger router, the
scheduler) serves the module; its processes reach each emulator through a `FaultProxy`, so an
emulator can be "stopped" or made unreachable without losing what it holds, while the test's
own clients read the truth directly. Each test plays one fault in the middle of real work:

- `kill -9` of each function process (and a crash of the trigger router) mid-job, then a
  restart on the same port;
- the Pub/Sub emulator down while clients submit, then back;
- Firestore unreachable (blackholed, then refusing) while generate works and clients submit;
- Cloud Storage resetting every upload connection while generate works.

After each, within a deadline: every creation is final (`draft`, or `failed`/`canceled` and
refunded), every balance equals the sum of its ledger and is not negative, every creation has
exactly one debit and a refund iff it failed, and each balance is its grant minus the cost of
its drafts: nobody paid for work that was not done, nor twice.

Jobs are slowed (`OFFLINE_LATENCY_SECONDS`) so a fault lands while they are in flight; leases
and the sweeper's thresholds are short so the backstops act within the test.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
import requests
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter
from google.pubsub_v1 import SubscriberClient
from google.pubsub_v1.services.subscriber.transports.grpc import SubscriberGrpcTransport

from tests.support.faultproxy import FaultProxy, Mode
from tests.support.stack import RunningStack, start_stack
from tools.stack.devauth import DevSigner
from tools.stack.emulators import EmulatorSet
from tools.stack.topology import tap_subscription_name
from tools.stack.waiting import wait_for, wait_until

FINAL = frozenset({"draft", "failed", "canceled"})
REFUNDABLE = frozenset({"failed", "canceled"})
GRANT = 100
SETTLE_SECONDS = 120.0  # every creation final after the fault ends
LATENCY_SECONDS = 2.0
LEASE_SECONDS = 6.0

STACK_ENV = {
    "OFFLINE_LATENCY_SECONDS": str(LATENCY_SECONDS),
    "LEASE_SECONDS": str(LEASE_SECONDS),
    "SWEEP_PENDING_AFTER_SECONDS": "3",
    "SWEEP_REFUND_AFTER_SECONDS": "2",
    "STORE_TIMEOUT_SECONDS": "4",
    "PUBLISH_TIMEOUT_SECONDS": "3",
    "OFFLINE_VIDEO_FPS": "12",
    # Above MAX_DELIVERY_ATTEMPTS (5), so a job that always fails is dead-lettered by Pub/Sub
    # before the claims give up on it: the dead_letter function has work to do.
    "MAX_GENERATION_ATTEMPTS": "10",
}


# --- what the module saw (printed at its end: the numbers for the reliability table) ---------


@dataclass
class Outcome:
    scenario: str
    faults: int
    creations: int
    statuses: dict[str, int]
    recovery_seconds: float  # from the end of the fault to every creation final
    notes: str = ""

    def line(self) -> str:
        seen = ", ".join(f"{k} {v}" for k, v in sorted(self.statuses.items()))
        return (
            f"{self.scenario}: {self.faults} fault(s), {self.creations} creation(s) ({seen}), "
            f"final {self.recovery_seconds:.1f} s after the fault ended"
            + (f"; {self.notes}" if self.notes else "")
        )


@dataclass
class FaultyStack:
    running: RunningStack
    proxies: dict[str, FaultProxy]
    subscriber: SubscriberClient
    outcomes: list[Outcome] = field(default_factory=list)
    cut_requests: int = 0  # client requests a fault cut off (then sent again)

    @property
    def db(self) -> firestore.Client:
        return self.running.db

    # --- clients -----------------------------------------------------------------------------

    def post(
        self, user: str, path: str, body: dict[str, Any], key: str | None = None
    ) -> requests.Response:
        headers = self.running.headers(user)
        if key is not None:
            headers["Idempotency-Key"] = key
        return requests.post(
            f"{self.running.stack.url('submit')}{path}", json=body, headers=headers, timeout=30
        )

    def submit(self, user: str, body: dict[str, Any], path: str = "/v1/creations") -> str:
        response = self.post(user, path, body)
        assert response.status_code == 202, response.text
        creation_id: str = response.json()["id"]
        return creation_id

    def submit_until_answered(
        self, user: str, body: dict[str, Any], key: str, timeout: float = 60
    ) -> requests.Response:
        """POST with an `Idempotency-Key` until the stack answers (a dead submit does not)."""

        def attempt() -> requests.Response | None:
            try:
                return self.post(user, "/v1/creations", body, key)
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError):
                self.cut_requests += 1
                return None  # killed mid-request, or not listening yet: the same key again

        return wait_until(attempt, timeout, f"an answer to {user}'s {key}", interval=0.2)

    # --- reading -----------------------------------------------------------------------------

    def creations(self, users: list[str]) -> list[dict[str, Any]]:
        found = []
        for user in users:
            for snap in (
                self.db.collection("creations")
                .where(filter=FieldFilter("user_id", "==", user))
                .stream()
            ):
                found.append({"id": snap.id, **(snap.to_dict() or {})})
        return found

    def count(self, users: list[str], status: str) -> int:
        return sum(1 for c in self.creations(users) if c.get("status") == status)

    def wait_count(self, users: list[str], status: str, at_least: int, what: str) -> None:
        wait_until(lambda: self.count(users, status) >= at_least, 60, what, interval=0.1)

    def dead_lettered(self, creation_id: str) -> bool:
        """Whether the job of `creation_id` reached the dead-letter topic (seen on its tap)."""
        settings = self.running.settings
        tap = self.subscriber.subscription_path(
            settings.gcp_project, tap_subscription_name(settings.dead_letter_topic)
        )
        response = self.subscriber.pull(
            subscription=tap, max_messages=100, return_immediately=True, timeout=10
        )
        if response.received_messages:
            self.subscriber.acknowledge(
                subscription=tap, ack_ids=[m.ack_id for m in response.received_messages]
            )
        return any(
            m.message.attributes.get("creation_id") == creation_id
            for m in response.received_messages
        )

    # --- after the fault ---------------------------------------------------------------------

    def settle(self, users: list[str], *, expected: int) -> tuple[list[dict[str, Any]], float]:
        """Wait until all `expected` creations of `users` are final (refunded if failed)."""
        started = time.monotonic()

        def settled(found: list[dict[str, Any]]) -> bool:
            return len(found) >= expected and all(
                c.get("status") in FINAL
                and (c.get("status") not in REFUNDABLE or c.get("refunded") is True)
                for c in found
            )

        def brief() -> list[dict[str, Any]]:
            return [
                {k: c.get(k) for k in ("id", "status", "refunded", "attempts", "error")}
                for c in self.creations(users)
            ]

        try:
            wait_for(brief, settled, SETTLE_SECONDS, f"{users}' creations final", interval=0.25)
        except TimeoutError as exc:
            pytest.fail(str(exc))
        return self.creations(users), time.monotonic() - started

    def assert_books(self, users: list[str], found: list[dict[str, Any]]) -> None:
        """balance == Σ ledger ≥ 0; one debit per creation; a refund iff it failed/canceled;
        balance == grant - what the drafts cost."""
        ledger = self.running.ledger
        for user in users:
            entries = ledger.entries(user)
            balance = ledger.balance(user)
            assert balance >= 0, f"{user}: negative balance {balance}"
            assert balance == sum(int(e["amount"]) for e in entries), (user, balance, entries)
            mine = [c for c in found if c["user_id"] == user]
            for creation in mine:
                kinds = sorted(e["kind"] for e in entries if e.get("creation_id") == creation["id"])
                want = ["debit", "refund"] if creation["status"] in REFUNDABLE else ["debit"]
                assert kinds == want, f"{creation['id']} ({creation['status']}): {kinds}"
            drafts = sum(int(c["cost"]) for c in mine if c["status"] == "draft")
            assert balance == GRANT - drafts, f"{user}: {balance} != {GRANT} - {drafts}"
        self.running.assert_ledgers_balance()

    def finish(
        self,
        scenario: str,
        users: list[str],
        *,
        expected: int,
        faults: int,
        fault_ended: float,
        notes: str = "",
    ) -> list[dict[str, Any]]:
        """Settle, check the books, record the outcome; the creations as they ended."""
        found, _waited = self.settle(users, expected=expected)
        recovery = time.monotonic() - fault_ended
        self.assert_books(users, found)
        assert len(found) == expected, f"{len(found)} creations, {expected} expected"
        statuses: dict[str, int] = {}
        for creation in found:
            statuses[creation["status"]] = statuses.get(creation["status"], 0) + 1
        outcome = Outcome(scenario, faults, len(found), statuses, recovery, notes)
        self.outcomes.append(outcome)
        print(outcome.line())
        return found

    def users(self, *names: str) -> list[str]:
        """Fresh users (unique to this run), each granted GRANT tokens."""
        made = [f"{name}-{uuid.uuid4().hex[:6]}" for name in names]
        for user in made:
            self.running.ledger.grant(user, GRANT)
        return made

    def set_mode(self, emulator: str, mode: Mode) -> None:
        self.proxies[emulator].set_mode(mode)


@pytest.fixture(scope="module")
def faulty(
    emulators: EmulatorSet,
    base_env: dict[str, str],
    signer: DevSigner,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[FaultyStack]:
    log_dir = tmp_path_factory.mktemp("faults")
    proxies = {
        "firestore": FaultProxy(emulators.firestore.port),
        "pubsub": FaultProxy(emulators.pubsub.port),
        "gcs": FaultProxy(emulators.gcs.port),
    }
    for proxy in proxies.values():
        proxy.start()
    hosts = {
        "FIRESTORE_EMULATOR_HOST": proxies["firestore"].host,
        "PUBSUB_EMULATOR_HOST": proxies["pubsub"].host,
        "STORAGE_EMULATOR_HOST": f"http://{proxies['gcs'].host}",
    }
    # The emulator itself, not the proxy: what the test reads must not fail with the stack.
    channel = grpc.insecure_channel(emulators.env()["PUBSUB_EMULATOR_HOST"])
    subscriber = SubscriberClient(transport=SubscriberGrpcTransport(channel=channel))
    faulty: FaultyStack | None = None
    try:
        running = start_stack(emulators, base_env, signer, log_dir, STACK_ENV, hosts=hosts)
        faulty = FaultyStack(running, proxies, subscriber)
        yield faulty
    finally:
        for proxy in proxies.values():
            proxy.set_mode("pass")  # the stack's teardown talks to the emulators through them
        if faulty is not None:
            faulty.running.stack.stop()
            summary = [outcome.line() for outcome in faulty.outcomes]
            (log_dir / "summary.json").write_text(json.dumps(summary, indent=2))
            print("\n" + "\n".join(summary) + f"\n(logs in {log_dir})")
        for proxy in proxies.values():
            proxy.stop()
        channel.close()


def brief(creation: dict[str, Any]) -> dict[str, Any]:
    """What a failed wait should show of a creation."""
    keys = ("status", "attempts", "requeues", "refunded", "error", "lease_expires_at")
    return {k: creation.get(k) for k in keys}


def image(prompt: str) -> dict[str, Any]:
    return {"type": "image", "prompt": prompt}


def kill_and_restart(faulty: FaultyStack, name: str, *, keep_down: Callable[[], object]) -> float:
    """`kill -9` one piece, wait until `keep_down()` holds while it is dead, restart it; the
    moment it serves again (time.monotonic())."""
    faulty.running.stack.kill(name)
    wait_until(keep_down, 60, f"what should happen while {name} is dead")
    faulty.running.stack.restart(name)
    return time.monotonic()


# --- kill -9 of each function process, mid-job ----------------------------------------------


def test_dead_letter_killed_while_a_job_is_dead_lettered(faulty: FaultyStack) -> None:
    # The sweeper is down too, so Pub/Sub's dead letter is the only way out: its re-enqueues
    # would otherwise race the dead letter (and the claims of their messages would ack them).
    # First in the module on purpose: after a `kill -9` of generate, the Pub/Sub emulator was
    # seen to stop redelivering a job's message after its second failed delivery (its third
    # never came within 90 s), so a job could not reach its dead letter; the sweeper rescued
    # it (tests below), but this test is about the dead letter.
    users = faulty.users("dl")
    stack = faulty.running.stack
    stack.kill("sweep")
    doomed = faulty.submit(users[0], image("static [fail:transient]"))
    faulty.wait_count(users, "processing", 1, "the doomed job in the middle")
    # Down until Pub/Sub has given up on the job: its push to dead_letter then fails too.
    stack.kill("dead_letter")
    wait_for(
        lambda: (faulty.dead_lettered(doomed), brief(faulty.running.doc(doomed))),
        lambda seen: seen[0],
        90,
        "the doomed job dead-lettered while dead_letter is dead",
    )
    stack.restart("dead_letter")
    ended = time.monotonic()
    faulty.running.wait(
        doomed, lambda d: bool(d.get("refunded")), "failed and refunded", watch_processes=False
    )
    stack.restart("sweep")
    [done] = faulty.finish(
        "kill -9 dead_letter (+ sweep)", users, expected=1, faults=2, fault_ended=ended
    )
    faulty.outcomes[-1].notes = f"ended {done['error']['code']} after {done['attempts']} claims"
    assert done["error"]["code"] == "delivery_exhausted"


def test_generate_killed_mid_job(faulty: FaultyStack) -> None:
    users = faulty.users("gen")
    for n in range(4):
        faulty.submit(users[0], image(f"a kite {n}"))
    faulty.wait_count(users, "processing", 2, "two jobs in the middle")
    mid = faulty.count(users, "processing")
    ended = kill_and_restart(faulty, "generate", keep_down=lambda: True)
    found = faulty.finish(
        "kill -9 generate",
        users,
        expected=4,
        faults=1,
        fault_ended=ended,
        notes=f"{mid} processing at the kill",
    )
    assert {c["status"] for c in found} == {"draft"}
    assert max(int(c["attempts"]) for c in found) >= 2  # the killed ones were taken up again


def test_stitch_killed_mid_job(faulty: FaultyStack) -> None:
    users = faulty.users("reel")
    # Clips of two shapes, so the stitch re-encodes (slower: the kill lands mid-job).
    clips = [
        faulty.submit(
            users[0],
            {"type": "video", "prompt": f"tide {n}", "duration_seconds": 4, "aspect_ratio": ratio},
        )
        for n, ratio in enumerate(("16:9", "9:16"))
    ]
    for clip in clips:
        faulty.running.wait(clip, lambda d: d.get("status") == "draft", "draft", 90)
    for n in range(2):
        faulty.submit(users[0], {"clips": clips, "title": f"reel {n}"}, path="/v1/reels")

    def reels_processing() -> int:
        return sum(
            1
            for c in faulty.creations(users)
            if c.get("type") == "reel" and c.get("status") == "processing"
        )

    mid = wait_until(reels_processing, 60, "a reel in the middle", interval=0.02)
    ended = kill_and_restart(faulty, "stitch", keep_down=lambda: True)
    found = faulty.finish(
        "kill -9 stitch",
        users,
        expected=4,
        faults=1,
        fault_ended=ended,
        notes=f"{mid} reel(s) processing at the kill",
    )
    assert {c["status"] for c in found} == {"draft"}


def test_submit_killed_while_clients_submit(faulty: FaultyStack) -> None:
    users = faulty.users(*(f"sub{n}" for n in range(6)))
    cut_before = faulty.cut_requests
    keys = {user: [f"{user}-k{k}" for k in range(2)] for user in users}

    def client(user: str) -> list[int]:
        return [
            faulty.submit_until_answered(user, image(f"{key} lantern"), key).status_code
            for key in keys[user]
        ]

    with concurrent.futures.ThreadPoolExecutor(len(users)) as pool:
        answers = [pool.submit(client, user) for user in users]
        # Kill as soon as the first submission has landed: the others are in flight.
        wait_until(lambda: faulty.creations(users), 60, "a first submission", interval=0.02)
        faulty.running.stack.kill("submit")
        faulty.running.stack.restart("submit")
        ended = time.monotonic()
        statuses = [code for future in answers for code in future.result()]
    assert set(statuses) == {202}, statuses  # every client got its answer, on retry if need be
    found = faulty.finish(
        "kill -9 submit",
        users,
        expected=2 * len(users),
        faults=1,
        fault_ended=ended,
        notes=f"{faulty.cut_requests - cut_before} requests cut off and sent again",
    )
    assert {c["status"] for c in found} == {"draft"}  # one creation per key, each made once


def test_refund_killed_while_failures_are_refunded(faulty: FaultyStack) -> None:
    users = faulty.users("ref")
    for n in range(3):
        faulty.submit(users[0], image(f"storm {n} [fail:permanent]"))
    faulty.wait_count(users, "failed", 1, "a first failure, its refund under way")
    ended = kill_and_restart(faulty, "refund", keep_down=lambda: faulty.count(users, "failed") == 3)
    found = faulty.finish("kill -9 refund", users, expected=3, faults=1, fault_ended=ended)
    assert {c["error"]["code"] for c in found} == {"provider_error"}


def test_sweep_killed_while_a_dead_workers_job_waits_for_it(faulty: FaultyStack) -> None:
    users = faulty.users("swp")
    for n in range(2):
        faulty.submit(users[0], image(f"a moth {n}"))
    faulty.wait_count(users, "processing", 1, "a job in the middle")
    stack = faulty.running.stack
    stack.kill("sweep")
    stack.kill("generate")  # its claims now wait for their leases to run out, then the sweeper
    stack.restart("generate")

    def leases_ran_out() -> bool:
        now = dt.datetime.now(dt.UTC)
        return all(
            c.get("status") != "processing" or c["lease_expires_at"] < now
            for c in faulty.creations(users)
        )

    wait_until(leases_ran_out, 60, "the dead worker's leases ran out")
    stranded = faulty.count(users, "processing")
    stack.restart("sweep")
    ended = time.monotonic()
    faulty.finish(
        "kill -9 sweep (+ generate)",
        users,
        expected=2,
        faults=2,
        fault_ended=ended,
        notes=f"{stranded} stranded in processing until the sweeper came back",
    )


def test_status_stream_unreachable_while_failures_are_announced(faulty: FaultyStack) -> None:
    # The workers fail the creations but cannot announce it (Pub/Sub unreachable from the
    # functions): their jobs are redelivered, and once Pub/Sub answers again a redelivery
    # finds each creation failed and announces it, and refund refunds it (or the sweeper).
    users = faulty.users("sts")
    for n in range(3):
        faulty.submit(users[0], image(f"hail {n} [fail:safety]"))
    faulty.wait_count(users, "processing", 1, "the jobs in the middle")
    faulty.set_mode("pubsub", "down")
    try:
        wait_until(lambda: faulty.count(users, "failed") == 3, 60, "failed, unannounced")
        unrefunded = [c for c in faulty.creations(users) if not c.get("refunded")]
    finally:
        faulty.set_mode("pubsub", "pass")
    ended = time.monotonic()
    found = faulty.finish(
        "status stream unreachable", users, expected=3, faults=1, fault_ended=ended
    )
    assert {c["error"]["code"] for c in found} == {"safety_blocked"}
    assert unrefunded, "refunded while the status stream was unreachable: the test cut nothing"


# --- the emulators, unreachable ------------------------------------------------------------------


def test_pubsub_down_while_clients_submit(faulty: FaultyStack) -> None:
    users = faulty.users(*(f"ps{n}" for n in range(6)))
    before = users[:2]
    for user in before:  # work already queued when the queue goes away
        faulty.submit(user, image("a heron"))
    faulty.wait_count(before, "processing", 1, "queued work in the middle")
    faulty.set_mode("pubsub", "down")
    during = users[2:]
    with concurrent.futures.ThreadPoolExecutor(len(during)) as pool:
        answers = list(
            pool.map(lambda u: faulty.post(u, "/v1/creations", image("a crane")), during)
        )
    faulty.set_mode("pubsub", "pass")
    ended = time.monotonic()
    refused = 0
    for answer in answers:
        assert answer.status_code in (202, 503), answer.text
        if answer.status_code == 503:
            body = answer.json()
            assert body["error"]["code"] == "queue_unavailable", body
            refused += body["refunded"] is True
    # Once it is back, the queue takes work again (the first tries may still meet a channel
    # that is reconnecting: each is refunded, and the books below say so).
    after = faulty.users("ps-after")
    wait_until(
        lambda: faulty.post(after[0], "/v1/creations", image("a swan")).status_code == 202,
        60,
        "a submit accepted once Pub/Sub is back",
        interval=0.5,
    )
    found = faulty.finish(
        "Pub/Sub down during submits",
        users + after,
        expected=len(users) + len(faulty.creations(after)),
        faults=1,
        fault_ended=ended,
        notes=f"{refused} of {len(answers)} submits during the outage answered 503 refunded",
    )
    for creation in found:
        if creation["status"] == "failed":
            assert creation["error"]["code"] == "queue_unavailable", creation
    assert refused == sum(1 for c in found if c["user_id"] in during and c["status"] == "failed")


def test_firestore_unreachable_during_generate(faulty: FaultyStack) -> None:
    users = faulty.users("fs", "fs-client")
    for n in range(4):
        faulty.submit(users[0], image(f"a glacier {n}"))
    faulty.wait_count(users, "processing", 2, "jobs in the middle")
    client = users[1]
    faulty.set_mode("firestore", "blackhole")  # calls hang ...
    busy = faulty.post(client, "/v1/creations", image("ice"), "fs-key")
    faulty.set_mode("firestore", "down")  # ... then are refused
    refused = faulty.post(client, "/v1/creations", image("ice"), "fs-key")
    faulty.set_mode("firestore", "pass")
    ended = time.monotonic()
    for answer in (busy, refused):
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"]["code"] == "busy"
    assert faulty.creations([client]) == []  # nothing debited
    retried = faulty.submit_until_answered(client, image("ice"), "fs-key")
    assert retried.status_code == 202, retried.text
    faulty.finish(
        "Firestore blackholed, then refusing, during generate",
        users,
        expected=5,
        faults=2,
        fault_ended=ended,
    )


def test_storage_resetting_uploads_during_generate(faulty: FaultyStack) -> None:
    # Two jobs: the Pub/Sub emulator pushes about two at a time, and a third would wait behind
    # the two the outage holds up.
    users = faulty.users("gcs")
    for n in range(2):
        faulty.submit(users[0], image(f"a reef {n}"))
    gcs = faulty.proxies["gcs"]
    resets_before = gcs.counts.reset
    # Every connection reset from before any job is past its simulated latency, so every
    # first upload fails; held until each job's upload was refused twice (2 x 2 resets).
    faulty.set_mode("gcs", "reset")
    wait_until(
        lambda: gcs.counts.reset - resets_before >= 4, 60, "the uploads refused, and retried"
    )
    faulty.set_mode("gcs", "pass")
    ended = time.monotonic()
    found = faulty.finish(
        "Cloud Storage resetting uploads", users, expected=2, faults=1, fault_ended=ended
    )
    faulty.outcomes[-1].notes = (
        f"{gcs.counts.reset - resets_before} upload connections reset; attempts "
        f"{sorted(int(c['attempts']) for c in found)} (the storage client retried inside the "
        "call, no redelivery)"
    )
    assert {c["status"] for c in found} == {"draft"}
