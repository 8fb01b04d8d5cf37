"""`make bench`: the suite's local stack against the Celery + Redis baseline, one run.

    .venv/bin/python -m benchmarks.throughput [--sequential 100] [--users 20] [--per-user 10]
        [--stacks suite,baseline] [--out docs/benchmarks.md | -] [--json build/bench.json]

On one set of emulators (free ports), with OFFLINE_IMAGE_LONG_SIDE_PX=256, it measures the
floors of the hops the suite uses, then each stack in turn (Firestore wiped before each):
submit -> 202 and submit -> `draft` seen by a per-user listener, one at a time and in a burst;
CPU-seconds of the stack's own processes; Firestore/Pub/Sub/HTTP/Celery counts from the
counting hook (`benchmarks.counting`); then cold-start import times. It prints a table and
writes the generated part of docs/benchmarks.md and every raw number to the JSON file.
A stack that cannot run here (no redis-server, no baseline) is skipped and the report says why.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

from google.cloud import firestore

from benchmarks.counting.reader import hook_env
from benchmarks.harness import coldstart, floors, machine, report
from benchmarks.harness.cpu import ServerThreadCpu
from benchmarks.harness.runner import WARM_UP_CREATIONS, Sizes, StackRun, per_creation
from benchmarks.harness.stacks import (
    BaselineUnderTest,
    StackUnderTest,
    SuiteUnderTest,
    baseline_class,
)
from benchmarks.harness.stats import summarize
from shared.core.settings import Settings
from shared.money.ledger import Ledger
from shared.store.firestore import FirestoreDocuments
from tools.stack.devauth import certs_url, load_or_create_signer
from tools.stack.emulators import EmulatorSet, wipe_firestore
from tools.stack.processes import REPO_ROOT, free_port, python_child_env
from tools.stack.topology import ensure_resources

PROJECT: Final = "demo-bench"
IMAGE_PX: Final = 256
STACKS: Final = ("suite", "baseline")
DEFAULT_OUT: Final = REPO_ROOT / "docs" / "benchmarks.md"
DEFAULT_JSON: Final = REPO_ROOT / "build" / "bench.json"

Progress = Callable[[str], None]


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="benchmarks.throughput", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--sequential", type=int, default=100, help="creations one at a time")
    parser.add_argument("--users", type=int, default=20, help="users in the burst")
    parser.add_argument("--per-user", type=int, default=10, help="creations per burst user")
    parser.add_argument(
        "--stacks", default=",".join(STACKS), help="comma-separated: suite,baseline"
    )
    parser.add_argument("--floor-samples", type=int, default=30, help="samples per floor")
    parser.add_argument(
        "--cold-runs", type=int, default=3, help="cold-start runs (best of; 0 skips)"
    )
    parser.add_argument(
        "--cold-modules",
        default="",
        help="comma-separated functions / baseline modules to cold-start (default: all)",
    )
    parser.add_argument(
        "--render",
        metavar="JSON",
        help="measure nothing: print and write the report of an earlier run's raw numbers",
    )
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="Markdown file to update, or -")
    parser.add_argument("--json", default=str(DEFAULT_JSON), help="where the raw numbers go")
    args = parser.parse_args(argv)
    args.stack_names = [s.strip() for s in args.stacks.split(",") if s.strip()]
    unknown = set(args.stack_names) - set(STACKS)
    if unknown or not args.stack_names:
        parser.error(f"--stacks takes {', '.join(STACKS)}; got {args.stacks!r}")
    for name in ("sequential", "users", "per_user", "floor_samples"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def _progress() -> Progress:
    started = time.monotonic()

    def say(message: str) -> None:
        elapsed = int(time.monotonic() - started)
        print(f"[{elapsed // 60:02d}:{elapsed % 60:02d}] {message}", flush=True)

    return say


def why_not(name: str) -> str | None:
    """Why a stack cannot run on this machine, or None."""
    if name != "baseline":
        return None
    if shutil.which("redis-server") is None:
        return "redis-server is not installed (Debian package redis-server)"
    found, why = baseline_class()
    return why if found is None else None


def limits_env(args: argparse.Namespace) -> dict[str, str]:
    """The per-user limits (shared.intake.limits) set past what the run submits, so the stack
    measures throughput, not refusals: every burst user may have all its creations active at
    once, and each user's bucket holds all of its submits (the sequential user's warm-up
    included) with no refill needed."""
    defaults = Settings()
    most = max(args.sequential + WARM_UP_CREATIONS, args.per_user)
    return {
        "MAX_ACTIVE_PER_USER": str(max(args.per_user, defaults.max_active_per_user)),
        "SUBMIT_BURST": str(max(most, defaults.submit_burst)),
        "SUBMIT_RATE_PER_MINUTE": str(max(60.0 * most, defaults.submit_rate_per_minute)),
    }


def measure_floors(db: firestore.Client, args: argparse.Namespace, say: Progress) -> dict[str, Any]:
    say(f"floors: publish -> push handler ({args.floor_samples} samples) ...")
    push = summarize(floors.push_floor(PROJECT, args.floor_samples))
    say(f"floors: write -> listener ({args.floor_samples} samples) ...")
    listener = summarize(floors.listener_floor(db, args.floor_samples))
    say(f"floors: commit + publish, alone and from {args.users} threads ...")
    alone, rate = floors.commit_publish_floor(
        db,
        PROJECT,
        samples=args.floor_samples,
        threads=args.users,
        per_thread=args.per_user,
    )
    commit_publish = summarize(alone)
    return {
        "push_ms": push,
        "listener_ms": listener,
        "commit_publish_ms": commit_publish,
        "commit_publish_per_second": rate,
        "sum_p50_ms": push["p50"] + listener["p50"] + commit_publish["p50"],
    }


def run(args: argparse.Namespace, say: Progress) -> dict[str, Any]:
    result: dict[str, Any] = {
        "date": machine.now_utc(),
        "machine": machine.machine(),
        "versions": machine.versions(),
        "options": {
            "sequential": args.sequential,
            "users": args.users,
            "per_user": args.per_user,
            "stacks": args.stack_names,
            "image_px": IMAGE_PX,
            "warm_up": WARM_UP_CREATIONS,
            "floor_samples": args.floor_samples,
            "cold_runs": args.cold_runs,
        },
        "skipped": {},
        "failed": {},
        "stacks": {},
        "notes": [],
    }
    runnable = []
    for name in args.stack_names:
        reason = why_not(name)
        if reason is None:
            runnable.append(name)
        else:
            result["skipped"][name] = reason
            say(f"skipping the {name}: {reason}")

    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        work = Path(scratch)
        auth_dir = work / "auth"
        signer = load_or_create_signer(auth_dir)
        router_port = free_port()
        emulators = EmulatorSet(work / "logs" / "emulators", functions_emulator_port=router_port)
        emulators.start(progress=say)
        try:
            hosts = emulators.env()
            os.environ.update(hosts)  # this process's clients (floors, listeners, grants)
            settings = Settings(
                gcp_project=PROJECT,
                firestore_emulator_host=hosts["FIRESTORE_EMULATOR_HOST"],
                pubsub_emulator_host=hosts["PUBSUB_EMULATOR_HOST"],
                storage_emulator_host=hosts["STORAGE_EMULATOR_HOST"],
            )
            ensure_resources(settings)
            db = firestore.Client(project=PROJECT)
            ledger = Ledger(FirestoreDocuments(db, settings), settings)
            result["floors"] = measure_floors(db, args, say)
            base_env = {
                **os.environ,
                **hosts,
                "GCP_PROJECT": PROJECT,
                "GOOGLE_CLOUD_PROJECT": PROJECT,
                "MEDIA_BUCKET": settings.media_bucket,
                "AUTH_CERTS_URL": certs_url(auth_dir),
                "OFFLINE_IMAGE_LONG_SIDE_PX": str(IMAGE_PX),
                **limits_env(args),
            }
            thread_cpu = ServerThreadCpu()
            emulator_pids: dict[str, list[int]] = {
                key: [p.pid] for key, p in emulators.processes.items() if p.pid is not None
            }
            sizes = Sizes(args.sequential, args.users, args.per_user)
            with thread_cpu.installed():
                for name in runnable:
                    wipe_firestore(hosts["FIRESTORE_EMULATOR_HOST"], PROJECT)
                    counts_dir = work / "counts" / name
                    env = python_child_env(hook_env(base_env, counts_dir))
                    log_dir = work / "logs" / name
                    try:
                        stack: StackUnderTest = (
                            SuiteUnderTest(settings, env, log_dir, router_port)
                            if name == "suite"
                            else BaselineUnderTest(env, log_dir)
                        )
                        say(f"{name}: starting ...")
                        stack.start(say)
                        try:
                            measured = StackRun(
                                stack,
                                db=db,
                                ledger=ledger,
                                token_for=lambda uid: signer.mint(uid, PROJECT),
                                counts_dir=counts_dir,
                                emulator_pids=emulator_pids,
                                thread_cpu=thread_cpu,
                                progress=say,
                            ).run(sizes)
                        finally:
                            say(f"{name}: stopping ...")
                            stack.stop()
                    except Exception as exc:  # the other stack's numbers are still worth having
                        result["failed"][name] = f"{type(exc).__name__}: {exc}"[:2000]
                        say(f"{name} FAILED: {result['failed'][name]}")
                        continue
                    result["stacks"][name] = _derived(measured, result["floors"])
                    say(_one_line(name, result["stacks"][name]))
                    if stack.in_process_port() is not None:
                        result["notes"].append(
                            f"The {name}'s trigger router runs as threads of the harness: its "
                            "CPU is the request threads' `time.thread_time()`, counted in the "
                            "stack's CPU."
                        )
        finally:
            say("stopping the emulators ...")
            emulators.stop()
    if args.cold_runs > 0:
        say(f"cold starts: fresh interpreters, best of {args.cold_runs} ...")
        only = {m.strip() for m in args.cold_modules.split(",") if m.strip()} or None
        result["cold_start"] = {
            "suite": coldstart.suite_cold_starts(args.cold_runs, os.environ, only)
        }
        if "baseline" in runnable:
            result["cold_start"]["baseline"] = coldstart.baseline_cold_starts(
                args.cold_runs, os.environ, only
            )
    result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    result["notes"] += [
        "Counts are taken at the client library in every process of the stack (documents "
        "asked for in batch gets, documents returned by queries with at least one read per "
        "query, writes in commits, messages published), over the sequential and the burst "
        "phases together; the sweep clock runs as in `make dev`, so its work is in them.",
        "CPU is user + system time of the stack's processes and their children (not the "
        "emulators', shown apart, nor the harness's listeners and load generator).",
    ]
    return result


def _derived(measured: dict[str, Any], floor: dict[str, Any]) -> dict[str, Any]:
    seq, burst = measured["sequential"], measured["burst"]
    measured["per_creation"] = per_creation([seq, burst])
    measured["cpu_per_creation"] = {
        "burst": burst["cpu_seconds"]["stack"] / burst["creations"],
        "sequential": seq["cpu_seconds"]["stack"] / seq["creations"],
        "emulators_burst": burst["cpu_seconds"]["emulators"] / burst["creations"],
        "emulators_sequential": seq["cpu_seconds"]["emulators"] / seq["creations"],
        **{
            f"emulator_{key}_burst": seconds / burst["creations"]
            for key, seconds in (burst["cpu_seconds"].get("emulators_by_role") or {}).items()
        },
    }
    measured["submit_vs_floor"] = burst["submits_per_second"] / floor["commit_publish_per_second"]
    measured["sequential_draft_p50_above_floor_ms"] = (
        seq["submit_to_draft_ms"]["p50"] - floor["sum_p50_ms"]
    )
    measured["sequential_draft_p99_above_floor_ms"] = (
        seq["submit_to_draft_ms"]["p99"] - floor["sum_p50_ms"]
    )
    return measured


def _one_line(name: str, numbers: dict[str, Any]) -> str:
    burst = numbers["burst"]
    return (
        f"{name}: sequential draft p50 {numbers['sequential']['submit_to_draft_ms']['p50']:.0f} ms"
        f", burst {burst['creations_per_second']:.1f} creations/s, "
        f"{numbers['cpu_per_creation']['burst']:.3f} CPU-s per creation"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    say = _progress()
    result = json.loads(Path(args.render).read_text()) if args.render else run(args, say)
    if not result["stacks"]:
        say(f"no stack was measured: {result['failed'] or result['skipped']}")
        return 1
    print("\n" + report.text_report(result), flush=True)
    if not args.render:
        report.write_json(Path(args.json), result)
        say(f"raw numbers: {args.json}")
    if args.out != "-":
        report.write_markdown(Path(args.out), report.markdown_report(result))
        say(f"updated {args.out} (between its bench markers)")
    for name, why in result.get("failed", {}).items():
        say(f"{name} failed: {why}")
    return 1 if result.get("failed") else 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
    sys.exit(130)
