"""One stack's measurement: warm up, a sequential phase, a burst, with CPU and counts around
each phase."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.cloud import firestore

from benchmarks.counting.reader import Snapshot, delta, read_counts, total
from benchmarks.harness import cpu
from benchmarks.harness.load import PhaseResult, Submitter, run_burst, run_sequential
from benchmarks.harness.stacks import StackUnderTest
from benchmarks.harness.stats import summarize
from benchmarks.harness.watch import CreationWatcher
from shared.money.ledger import Ledger

Progress = Callable[[str], None]
WARM_UP_CREATIONS = 2
SETTLE_QUIET_SECONDS = 0.6  # counts unchanged this long: the stack has gone quiet
SETTLE_MAX_SECONDS = 6.0


@dataclass(frozen=True)
class Sizes:
    sequential: int
    users: int
    per_user: int


@dataclass
class _Marks:
    counts: Snapshot
    stack_cpu: dict[str, cpu.CpuSample]
    emulator_cpu: dict[str, cpu.CpuSample]
    in_process: float
    harness: float
    at: float


class StackRun:
    def __init__(
        self,
        stack: StackUnderTest,
        *,
        db: firestore.Client,
        ledger: Ledger,
        token_for: Callable[[str], str],
        counts_dir: Path,
        emulator_pids: Mapping[str, Sequence[int]],
        thread_cpu: cpu.ServerThreadCpu,
        progress: Progress,
    ) -> None:
        self.stack = stack
        self.db = db
        self.ledger = ledger
        self.token_for = token_for
        self.counts_dir = counts_dir
        self.emulator_pids = {key: list(pids) for key, pids in emulator_pids.items()}
        self.thread_cpu = thread_cpu
        self.say = progress

    def _mark(self) -> _Marks:
        port = self.stack.in_process_port()
        return _Marks(
            counts=read_counts(self.counts_dir),
            stack_cpu=cpu.sample_roles(self.stack.pids()),
            emulator_cpu=cpu.sample_roles(self.emulator_pids),
            in_process=0.0 if port is None else self.thread_cpu.of(port),
            harness=cpu.this_process_seconds(),
            at=time.perf_counter(),
        )

    def _settle(self) -> None:
        """Wait until the counts stop changing: work that follows a draft (a trigger's no-op
        refund, say) belongs to the creation."""
        deadline = time.monotonic() + SETTLE_MAX_SECONDS
        last = read_counts(self.counts_dir)
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.2)
            now = read_counts(self.counts_dir)
            if now != last:
                last, quiet_since = now, time.monotonic()
            elif time.monotonic() - quiet_since >= SETTLE_QUIET_SECONDS:
                return

    def _phase_numbers(self, before: _Marks, after: _Marks, creations: int) -> dict[str, Any]:
        by_role: dict[str, Counter[str]] = {}
        for role, counts in delta(before.counts, after.counts).items():
            by_role.setdefault(self.stack.count_roles.get(role, role), Counter()).update(counts)
        stack_cpu = cpu.spent_by_role(before.stack_cpu, after.stack_cpu)
        emulators = cpu.spent_by_role(before.emulator_cpu, after.emulator_cpu)
        in_process = after.in_process - before.in_process
        port = self.stack.in_process_port()
        if port is not None:
            stack_cpu["router (harness thread)"] = in_process
        return {
            "creations": creations,
            "seconds": after.at - before.at,
            "cpu_seconds": {
                "stack": sum(stack_cpu.values()),
                "by_role": stack_cpu,
                "emulators": sum(emulators.values()),
                "emulators_by_role": emulators,
                "harness_process": after.harness - before.harness - in_process,
            },
            "counts": {role: dict(counts) for role, counts in sorted(by_role.items())},
            "counts_total": dict(total(by_role)),
        }

    def run(self, sizes: Sizes) -> dict[str, Any]:
        name = self.stack.name
        submitter = Submitter(self.stack.submit_url, self.token_for)
        seq_user = f"{name}-seq"
        burst_users = [f"{name}-u{i:02d}" for i in range(sizes.users)]
        self.ledger.grant(seq_user, 2 * (sizes.sequential + WARM_UP_CREATIONS) + 5)
        for user in burst_users:
            self.ledger.grant(user, 2 * sizes.per_user + 5)

        watcher = CreationWatcher(self.db, [seq_user])
        watcher.start()
        try:
            self.say(f"  warm-up: {WARM_UP_CREATIONS} creations (not measured)")
            run_sequential(
                submitter, watcher, seq_user, WARM_UP_CREATIONS, timeout=60, progress=_quiet
            )
            self._settle()
            before = self._mark()
            sequential = run_sequential(
                submitter, watcher, seq_user, sizes.sequential, timeout=60, progress=self.say
            )
            self._settle()
            after = self._mark()
        finally:
            watcher.stop()
        seq_numbers = self._phase_numbers(before, after, sizes.sequential)

        watcher = CreationWatcher(self.db, burst_users)
        watcher.start()
        try:
            self._settle()
            before = self._mark()
            creations = sizes.users * sizes.per_user
            self.say(f"  burst: {sizes.users} users x {sizes.per_user} released together")
            burst = run_burst(
                submitter,
                watcher,
                burst_users,
                sizes.per_user,
                timeout=max(120.0, creations * 1.0),
                progress=self.say,
            )
            self._settle()
            after = self._mark()
        finally:
            watcher.stop()
        burst_numbers = self._phase_numbers(before, after, creations)
        return {
            "sequential": {**_latencies(sequential), **seq_numbers},
            "burst": {
                **_latencies(burst),
                **burst_numbers,
                "creations_per_second": creations / burst.span_to_last_final(),
                "submits_per_second": creations / burst.span_to_last_accept(),
            },
            "processes": {role: len(cpu.with_children(p)) for role, p in self.stack.pids().items()},
        }


def _latencies(result: PhaseResult) -> dict[str, Any]:
    return {
        "statuses": result.statuses(),
        "submit_to_202_ms": summarize(result.accept_latencies()),
        "submit_to_draft_ms": summarize(result.draft_latencies()),
    }


def _quiet(_message: str) -> None:
    pass


def per_creation(phases: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Counts of all phases together, divided by their creations; invocations by role."""
    creations = sum(int(p["creations"]) for p in phases)
    counts: Counter[str] = Counter()
    by_role: dict[str, Counter[str]] = {}
    for phase in phases:
        counts.update(phase["counts_total"])
        for role, role_counts in phase["counts"].items():
            by_role.setdefault(role, Counter()).update(role_counts)
    invocations = {
        role: (c.get("http.requests", 0) + c.get("celery.tasks", 0)) / creations
        for role, c in sorted(by_role.items())
        if c.get("http.requests", 0) + c.get("celery.tasks", 0)
    }
    return {
        "creations": creations,
        "firestore_reads": counts.get("firestore.reads", 0) / creations,
        "firestore_writes": counts.get("firestore.writes", 0) / creations,
        "firestore_commits": counts.get("firestore.commits", 0) / creations,
        "firestore_transactions": counts.get("firestore.transactions", 0) / creations,
        "pubsub_publishes": counts.get("pubsub.messages", 0) / creations,
        "invocations": invocations,
        "invocations_total": sum(invocations.values()),
        "by_role": {
            role: {k: v / creations for k, v in sorted(c.items())}
            for role, c in sorted(by_role.items())
        },
    }
