"""Cost on paper: what orchestration costs per 1000 image creations and per 1000 videos, for
this suite on Cloud Functions (2nd gen) and for an always-on Redis + worker VM doing the same
work, from list prices; and what each costs a month at zero load.

Run: `.venv/bin/python -m benchmarks.cost --json build/bench.json` prints the markdown section
(`## Cost model`) for the harness's JSON; `render_cost_section` returns the same text.

Orchestration only: function requests and instance time, Firestore document reads, writes and
deletes, Pub/Sub throughput, Cloud Storage operations, and internet egress for one download of
each result. Not counted, because both designs pay them alike or they are not orchestration:
the models themselves (Imagen, Veo), storage at rest, logging, Artifact Registry, Secret
Manager, a UI's listener reads (one read per change it is shown), and support plans.

Prices (list prices, USD, read on `Prices.as_of` from the stored copies of the pages below; a
stored copy can be older than that day, and where no copy gave the number it is an ASSUMPTION,
labelled so here and in the rendered section):
- Cloud Run, which bills Cloud Functions 2nd gen (each function runs as a Cloud Run service):
  https://cloud.google.com/run/pricing, Tier 1 region (us-central1, `region` in Terraform),
  CPU allocated only while a request runs: $0.000024 per vCPU-second, $0.0000025 per
  GiB-second, $0.40 per million requests, each request's time rounded up to 100 ms; free each
  month per billing account: 180,000 vCPU-seconds, 360,000 GiB-seconds, 2 million requests.
  (The copy showed the CPU price and the free tier; the memory and request prices are the same
  figures two third-party guides from 2025 quote.)
- Memory to vCPU when a function sets only memory:
  https://cloud.google.com/functions/docs/configuring/memory (256 MiB .167, 512 MiB .333,
  1 GiB .583, 2 GiB 1 vCPU).
- Firestore: https://cloud.google.com/firestore/pricing, free quota 50,000 reads, 20,000 writes
  and 20,000 deletes a day. Per-location prices for the multi-region `nam5`
  (`firestore_location` in Terraform): $0.06 / $0.18 / $0.02 per 100,000 reads / writes /
  deletes, from an older copy of the same page (the current copy sends to a per-location
  table it did not include).
- Pub/Sub: https://cloud.google.com/pubsub/pricing, $40 per TiB of throughput (publish and
  delivery both count), first 10 GiB a month free, at least 1000 bytes billed per publish,
  push or pull request.
- Cloud Storage: https://cloud.google.com/storage/pricing-examples, Class A $0.005 and Class B
  $0.0004 per 1000 operations, internet egress $0.12 per GiB (first TiB, Americas and EMEA).
- Cloud Scheduler: https://cloud.google.com/scheduler/pricing, $0.10 a job a month, 3 jobs free
  per billing account.
- ASSUMPTION, no stored copy gave the number: Memorystore for Redis, Basic tier, 1 GiB (the
  smallest), $0.049 per GiB-hour in us-central1
  (https://cloud.google.com/memorystore/docs/redis/pricing).
- ASSUMPTION, likewise: Compute Engine on demand in us-central1
  (https://cloud.google.com/compute/vm-instance-pricing): e2-small $0.0167515 an hour
  (0.5 vCPU x $0.021811 + 2 GiB x $0.002923), e2-medium $0.033503; their sustained share of a
  core is 0.5 and 1 vCPU; a 10 GiB balanced persistent boot disk at $0.10 per GiB-month.
A month is 730 hours (the pages' own convention).

How the suite's instance time is billed: each invocation holds one instance (concurrency 1,
`max_instance_request_concurrency` in the Terraform module) for its wall time, rounded up to
100 ms, at the function's memory and vCPU from terraform/functions.tf. Wall time is the
harness's `wall_seconds` for the function when it has them, else the measured CPU-seconds
stretched by the vCPU share (a 0.333-vCPU instance takes three seconds for one CPU-second)
plus an assumed wait on Firestore/Pub/Sub per invocation. `generate` also holds its instance
while the model works (Imagen, Veo): an assumed number of seconds per image and per video,
shown on its own line. The always-on baseline pays its VM and Redis whatever the load; its
Firestore and Cloud Storage use is priced like the suite's.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, Literal, NamedTuple

HOURS_PER_MONTH = 730.0
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600
DAYS_PER_MONTH = HOURS_PER_MONTH / 24
GIB = 2**30
TIB = 2**40

Kind = Literal["image", "video"]


class Source(NamedTuple):
    """Where a price came from: a short key, what it prices, the page, and how it was read."""

    key: str
    item: str
    url: str
    read: str  # "stored copy ..." or "ASSUMPTION: ..."


@dataclass(frozen=True)
class Prices:
    """List prices in USD; the one place they live. See the module docstring for each."""

    as_of: dt.date
    sources: tuple[Source, ...]
    # Cloud Run (bills Cloud Functions 2nd gen), Tier 1, CPU only during requests.
    run_vcpu_second: float = 0.000024
    run_gib_second: float = 0.0000025
    run_request: float = 0.40 / 1_000_000
    run_rounding_seconds: float = 0.1
    run_free_vcpu_seconds: float = 180_000
    run_free_gib_seconds: float = 360_000
    run_free_requests: float = 2_000_000
    # Firestore, nam5 multi-region.
    firestore_read: float = 0.06 / 100_000
    firestore_write: float = 0.18 / 100_000
    firestore_delete: float = 0.02 / 100_000
    firestore_free_reads_per_day: float = 50_000
    firestore_free_writes_per_day: float = 20_000
    firestore_free_deletes_per_day: float = 20_000
    # Pub/Sub throughput.
    pubsub_per_tib: float = 40.0
    pubsub_min_request_bytes: int = 1000
    pubsub_free_bytes: float = 10 * GIB
    # Cloud Storage.
    gcs_class_a: float = 0.005 / 1000
    gcs_class_b: float = 0.0004 / 1000
    egress_per_gib: float = 0.12
    # Cloud Scheduler.
    scheduler_job_month: float = 0.10
    scheduler_free_jobs: int = 3
    # Always-on baseline (ASSUMPTIONS: see the module docstring).
    redis_basic_gib_hour: float = 0.049
    redis_min_gib: float = 1.0
    vm_hour: Mapping[str, float] = field(
        default_factory=lambda: {"e2-small": 0.0167515, "e2-medium": 0.033503}
    )
    vm_sustained_vcpu: Mapping[str, float] = field(
        default_factory=lambda: {"e2-small": 0.5, "e2-medium": 1.0}
    )
    disk_gib_month: float = 0.10

    def source(self, key: str) -> Source:
        return next(source for source in self.sources if source.key == key)


PRICES = Prices(
    as_of=dt.date(2026, 12, 2),
    sources=(
        Source(
            "run",
            "Cloud Run / Cloud Functions 2nd gen: vCPU-s, GiB-s, requests, free tier",
            "https://cloud.google.com/run/pricing",
            "stored copy (CPU price, free tier); memory and request prices as quoted by "
            "third-party 2025 guides",
        ),
        Source(
            "memory",
            "Cloud Functions memory to vCPU",
            "https://cloud.google.com/functions/docs/configuring/memory",
            "stored copy",
        ),
        Source(
            "firestore",
            "Firestore reads, writes, deletes (nam5) and free quota",
            "https://cloud.google.com/firestore/pricing",
            "stored copy (free quota); nam5 prices from an older copy of the page",
        ),
        Source(
            "pubsub",
            "Pub/Sub throughput, 1000-byte minimum, free 10 GiB",
            "https://cloud.google.com/pubsub/pricing",
            "stored copy",
        ),
        Source(
            "storage",
            "Cloud Storage Class A / B operations, internet egress",
            "https://cloud.google.com/storage/pricing-examples",
            "stored copy",
        ),
        Source(
            "scheduler",
            "Cloud Scheduler job",
            "https://cloud.google.com/scheduler/pricing",
            "stored copy",
        ),
        Source(
            "redis",
            "Memorystore for Redis, Basic, 1 GiB",
            "https://cloud.google.com/memorystore/docs/redis/pricing",
            "ASSUMPTION: no stored copy gave the price",
        ),
        Source(
            "vm",
            "Compute Engine e2-small / e2-medium, boot disk",
            "https://cloud.google.com/compute/vm-instance-pricing",
            "ASSUMPTION: no stored copy gave the price",
        ),
    ),
)


# --- the suite's functions ---------------------------------------------------------------


class Resources(NamedTuple):
    memory_mib: int
    vcpu: float


# Cloud Functions' vCPU for a memory size when `available_cpu` is left unset.
VCPU_FOR_MEMORY_MIB = {128: 0.083, 256: 0.167, 512: 0.333, 1024: 0.583, 2048: 1.0, 4096: 2.0}

# terraform/functions.tf `scaling_defaults`: memory, and vCPU where it is set ("1").
FUNCTIONS: Mapping[str, Resources] = {
    "submit": Resources(512, VCPU_FOR_MEMORY_MIB[512]),
    "generate": Resources(1024, 1.0),
    "stitch": Resources(2048, 1.0),
    "refund": Resources(256, VCPU_FOR_MEMORY_MIB[256]),
    "dead-letter": Resources(256, VCPU_FOR_MEMORY_MIB[256]),
    "sweep": Resources(256, VCPU_FOR_MEMORY_MIB[256]),
}
# A function the table does not know (a new one): the module's smallest default.
UNKNOWN_FUNCTION = Resources(256, VCPU_FOR_MEMORY_MIB[256])


def resources(function: str) -> Resources:
    return FUNCTIONS.get(function.replace("_", "-"), UNKNOWN_FUNCTION)


# --- inputs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PerCreation:
    """What one creation costs in operations, as the harness counted them (means per creation).

    `invocations`, `cpu_seconds` and `wall_seconds` are by function (the suite) or by process
    role (the baseline: its CPU only sizes the VM). `storage_class_a` / `storage_class_b` are
    Cloud Storage operations the stack made; None takes `Assumptions`' reading of the code.
    """

    firestore_reads: float = 0.0
    firestore_writes: float = 0.0
    firestore_deletes: float = 0.0
    pubsub_publishes: float = 0.0
    invocations: Mapping[str, float] = field(default_factory=dict)
    cpu_seconds: Mapping[str, float] = field(default_factory=dict)
    media_bytes: float = 0.0
    wall_seconds: Mapping[str, float] = field(default_factory=dict)
    storage_class_a: float | None = None
    storage_class_b: float | None = None

    @property
    def total_invocations(self) -> float:
        return sum(self.invocations.values())

    @property
    def total_cpu_seconds(self) -> float:
        return sum(self.cpu_seconds.values())


@dataclass(frozen=True)
class Assumptions:
    """What the model assumes where nothing was measured; every one is printed."""

    # Production download sizes: what a user fetches once (the benchmark's 256-px PNG is not).
    image_bytes: float = 1_500_000  # an Imagen 1024x1024 PNG
    video_bytes: float = 4_000_000  # a Veo 8 s 720p clip with sound (~4 Mbit/s)
    # `generate` holds its instance while the model works.
    image_model_seconds: float = 5.0
    video_model_seconds: float = 60.0
    # Waiting on Firestore / Pub/Sub in one invocation, beyond its CPU time.
    io_wait_seconds: float = 0.05
    # Veo, when the harness has no video run: one checkpoint write, and one progress write per
    # poll (genai_poll_initial_seconds 5, doubling to genai_poll_max_seconds 20).
    veo_poll_initial_seconds: float = 5.0
    veo_poll_max_seconds: float = 20.0
    # Cloud Storage per creation, from shared/work/worker.py and shared/money/refunds.py: the
    # suite uploads once; a first attempt's image draft is not settled (no earlier attempt
    # can have left anything), so no listing; the baseline uploads once; the user downloads
    # once (Class B).
    suite_class_a: float = 1.0
    baseline_class_a: float = 1.0
    class_b_per_download: float = 1.0
    pubsub_message_bytes: int = 1000  # job and status messages are smaller than the minimum
    pubsub_deliveries_per_publish: int = 1  # one push subscription per topic
    # Zero load: the sweeper (`sweep_schedule` */5) and what one tick does.
    sweep_ticks_per_month: float = HOURS_PER_MONTH * 12
    sweep_reads_per_tick: float = 5  # five queries, each billed one read when empty
    sweep_tick_seconds: float = 0.2
    # The always-on baseline.
    vm: str = "e2-small"
    redis_gib: float = 1.0
    disk_gib: float = 10.0
    baseline_worker_processes: int = 2  # Celery prefork, as benchmarked


ASSUMPTIONS = Assumptions()


# --- arithmetic ------------------------------------------------------------------------------


class Line(NamedTuple):
    """One priced line: its label, the quantity per creation, and dollars per creation."""

    label: str
    quantity: float
    unit: str
    dollars: float


def priced(label: str, quantity: float, unit: str, price: float) -> Line:
    """A line of `quantity` at `price` each."""
    return Line(label, quantity, unit, quantity * price)


def _round_up(seconds: float, step: float) -> float:
    return math.ceil(seconds / step - 1e-9) * step if seconds > 0 else 0.0


def billed_seconds(
    function: str, per: PerCreation, prices: Prices, assumptions: Assumptions
) -> float:
    """Instance-seconds one creation's invocations of `function` are billed (rounded each)."""
    calls = per.invocations.get(function, 0.0)
    if calls <= 0:
        return 0.0
    if function in per.wall_seconds:
        each = per.wall_seconds[function] / calls
    else:
        cpu = per.cpu_seconds.get(function, 0.0) / calls
        each = cpu / resources(function).vcpu + assumptions.io_wait_seconds
    return calls * _round_up(each, prices.run_rounding_seconds)


def model_seconds(kind: Kind, assumptions: Assumptions) -> float:
    return assumptions.image_model_seconds if kind == "image" else assumptions.video_model_seconds


def download_bytes(kind: Kind, assumptions: Assumptions) -> float:
    return assumptions.image_bytes if kind == "image" else assumptions.video_bytes


def pubsub_bytes(publishes: float, prices: Prices, assumptions: Assumptions) -> float:
    """Billed throughput: each publish and each push delivery is one request of >= 1000 B."""
    requests = publishes * (1 + assumptions.pubsub_deliveries_per_publish)
    return requests * max(assumptions.pubsub_message_bytes, prices.pubsub_min_request_bytes)


def _shared_lines(
    per: PerCreation, kind: Kind, class_a: float, prices: Prices, assumptions: Assumptions
) -> list[Line]:
    """What both designs pay alike per creation: Firestore, Cloud Storage, egress."""
    egress = download_bytes(kind, assumptions)
    class_b = (
        per.storage_class_b if per.storage_class_b is not None else assumptions.class_b_per_download
    )
    return [
        priced("Firestore reads", per.firestore_reads, "reads", prices.firestore_read),
        priced("Firestore writes", per.firestore_writes, "writes", prices.firestore_write),
        priced("Firestore deletes", per.firestore_deletes, "deletes", prices.firestore_delete),
        priced(CLASS_A, class_a, "ops", prices.gcs_class_a),
        priced(CLASS_B, class_b, "ops", prices.gcs_class_b),
        priced(EGRESS, egress / 1e6, "MB", 1e6 / GIB * prices.egress_per_gib),
    ]


def instance_second(function: str, prices: Prices) -> float:
    """What one second of one instance of `function` costs."""
    size = resources(function)
    return size.vcpu * prices.run_vcpu_second + size.memory_mib / 1024 * prices.run_gib_second


# Line labels the tables match the two designs' lines by.
REQUESTS, VCPU_TIME, MEMORY_TIME = "Function requests", "Function vCPU time", "Function memory time"
HELD = "`generate` held while the model works (assumed)"
PUBSUB = "Pub/Sub throughput"
CLASS_A, CLASS_B = "Cloud Storage Class A (upload, list)", "Cloud Storage Class B (download)"
EGRESS = "Egress, one download"


def suite_lines(
    per: PerCreation,
    kind: Kind,
    prices: Prices = PRICES,
    assumptions: Assumptions = ASSUMPTIONS,
) -> list[Line]:
    """Dollars per creation for the suite, line by line, at list price (no free tier)."""
    vcpu_seconds = gib_seconds = 0.0
    for function in per.invocations:
        billed = billed_seconds(function, per, prices, assumptions)
        vcpu_seconds += billed * resources(function).vcpu
        gib_seconds += billed * resources(function).memory_mib / 1024
    held = model_seconds(kind, assumptions) if per.invocations.get("generate", 0) > 0 else 0.0
    billed_pubsub = pubsub_bytes(per.pubsub_publishes, prices, assumptions)
    class_a = per.storage_class_a if per.storage_class_a is not None else assumptions.suite_class_a
    return [
        priced(REQUESTS, per.total_invocations, "requests", prices.run_request),
        priced(VCPU_TIME, vcpu_seconds, "vCPU-s", prices.run_vcpu_second),
        priced(MEMORY_TIME, gib_seconds, "GiB-s", prices.run_gib_second),
        priced(HELD, held, "s", instance_second("generate", prices)),
        priced(PUBSUB, billed_pubsub / 1000, "kB", 1000 / TIB * prices.pubsub_per_tib),
        *_shared_lines(per, kind, class_a, prices, assumptions),
    ]


def baseline_lines(
    per: PerCreation,
    kind: Kind,
    prices: Prices = PRICES,
    assumptions: Assumptions = ASSUMPTIONS,
) -> list[Line]:
    """Dollars per creation for the always-on baseline beyond its fixed monthly cost."""
    class_a = (
        per.storage_class_a if per.storage_class_a is not None else assumptions.baseline_class_a
    )
    return _shared_lines(per, kind, class_a, prices, assumptions)


def total(lines: Sequence[Line]) -> float:
    return sum(line.dollars for line in lines)


def baseline_fixed_monthly(
    prices: Prices = PRICES, assumptions: Assumptions = ASSUMPTIONS
) -> list[Line]:
    """The always-on baseline's monthly bill before any work."""
    redis_gib = max(assumptions.redis_gib, prices.redis_min_gib)
    vm = assumptions.vm
    return [
        priced(
            f"Memorystore Redis Basic {redis_gib:g} GiB",
            HOURS_PER_MONTH,
            "h",
            redis_gib * prices.redis_basic_gib_hour,
        ),
        priced(f"{vm} VM (API + Celery worker)", HOURS_PER_MONTH, "h", prices.vm_hour[vm]),
        priced(
            f"Boot disk {assumptions.disk_gib:g} GiB",
            assumptions.disk_gib,
            "GiB-month",
            prices.disk_gib_month,
        ),
    ]


def suite_zero_load_monthly(
    prices: Prices = PRICES, assumptions: Assumptions = ASSUMPTIONS
) -> list[Line]:
    """The suite's monthly bill with no creations: the sweeper's ticks, at list price."""
    ticks = assumptions.sweep_ticks_per_month
    seconds = ticks * _round_up(assumptions.sweep_tick_seconds, prices.run_rounding_seconds)
    reads = ticks * assumptions.sweep_reads_per_tick
    billed_pubsub = pubsub_bytes(ticks, prices, assumptions)
    return [
        priced("Cloud Scheduler job (sweep)", 1, "job", prices.scheduler_job_month),
        priced("`sweep` requests", ticks, "requests", prices.run_request),
        priced("`sweep` instance time", seconds, "s", instance_second("sweep", prices)),
        priced("Sweeper's Firestore reads", reads, "reads", prices.firestore_read),
        priced(
            "Sweep ticks on Pub/Sub", billed_pubsub / 1e6, "MB", 1e6 / TIB * prices.pubsub_per_tib
        ),
    ]


# --- a month at a load, free tiers applied ---------------------------------------------------


@dataclass(frozen=True)
class Usage:
    """Billable quantities for a month."""

    requests: float = 0.0
    vcpu_seconds: float = 0.0
    gib_seconds: float = 0.0
    reads: float = 0.0
    writes: float = 0.0
    deletes: float = 0.0
    pubsub_bytes: float = 0.0
    class_a: float = 0.0
    class_b: float = 0.0
    egress_bytes: float = 0.0


def suite_usage(
    per: PerCreation, kind: Kind, creations: float, prices: Prices, assumptions: Assumptions
) -> Usage:
    """The suite's month: `creations` of `kind`, and the sweeper's ticks."""
    lines = {line.label: line for line in suite_lines(per, kind, prices, assumptions)}
    held, generate = lines[HELD].quantity, resources("generate")
    ticks, sweep = assumptions.sweep_ticks_per_month, resources("sweep")
    tick_seconds = _round_up(assumptions.sweep_tick_seconds, prices.run_rounding_seconds) * ticks
    vcpu_seconds = lines[VCPU_TIME].quantity + held * generate.vcpu
    gib_seconds = lines[MEMORY_TIME].quantity + held * generate.memory_mib / 1024
    return Usage(
        requests=creations * per.total_invocations + ticks,
        vcpu_seconds=creations * vcpu_seconds + tick_seconds * sweep.vcpu,
        gib_seconds=creations * gib_seconds + tick_seconds * sweep.memory_mib / 1024,
        reads=creations * per.firestore_reads + ticks * assumptions.sweep_reads_per_tick,
        writes=creations * per.firestore_writes,
        deletes=creations * per.firestore_deletes,
        pubsub_bytes=pubsub_bytes(creations * per.pubsub_publishes + ticks, prices, assumptions),
        class_a=creations * lines[CLASS_A].quantity,
        class_b=creations * lines[CLASS_B].quantity,
        egress_bytes=creations * download_bytes(kind, assumptions),
    )


def baseline_usage(
    per: PerCreation, kind: Kind, creations: float, prices: Prices, assumptions: Assumptions
) -> Usage:
    """The baseline's month beyond its fixed cost: the Firestore and Cloud Storage work."""
    lines = {line.label: line for line in baseline_lines(per, kind, prices, assumptions)}
    return Usage(
        reads=creations * per.firestore_reads,
        writes=creations * per.firestore_writes,
        deletes=creations * per.firestore_deletes,
        class_a=creations * lines[CLASS_A].quantity,
        class_b=creations * lines[CLASS_B].quantity,
        egress_bytes=creations * download_bytes(kind, assumptions),
    )


def usage_dollars(usage: Usage, prices: Prices, *, free_tier: bool) -> float:
    """A month's bill for `usage`; with `free_tier`, the monthly free amounts come off first
    (Cloud Storage's free tier, which only some buckets get, is left out)."""

    def billable(amount: float, free: float) -> float:
        return max(0.0, amount - free) if free_tier else amount

    days = DAYS_PER_MONTH
    return (
        billable(usage.requests, prices.run_free_requests) * prices.run_request
        + billable(usage.vcpu_seconds, prices.run_free_vcpu_seconds) * prices.run_vcpu_second
        + billable(usage.gib_seconds, prices.run_free_gib_seconds) * prices.run_gib_second
        + billable(usage.reads, prices.firestore_free_reads_per_day * days) * prices.firestore_read
        + billable(usage.writes, prices.firestore_free_writes_per_day * days)
        * prices.firestore_write
        + billable(usage.deletes, prices.firestore_free_deletes_per_day * days)
        * prices.firestore_delete
        + billable(usage.pubsub_bytes, prices.pubsub_free_bytes) / TIB * prices.pubsub_per_tib
        + usage.class_a * prices.gcs_class_a
        + usage.class_b * prices.gcs_class_b
        + usage.egress_bytes / GIB * prices.egress_per_gib
    )


def suite_monthly(
    per: PerCreation,
    kind: Kind,
    creations: float,
    *,
    free_tier: bool,
    prices: Prices = PRICES,
    assumptions: Assumptions = ASSUMPTIONS,
) -> float:
    scheduler = 0.0 if free_tier and prices.scheduler_free_jobs >= 1 else prices.scheduler_job_month
    usage = suite_usage(per, kind, creations, prices, assumptions)
    return usage_dollars(usage, prices, free_tier=free_tier) + scheduler


def baseline_monthly(
    per: PerCreation,
    kind: Kind,
    creations: float,
    *,
    free_tier: bool,
    prices: Prices = PRICES,
    assumptions: Assumptions = ASSUMPTIONS,
) -> float:
    usage = baseline_usage(per, kind, creations, prices, assumptions)
    fixed = total(baseline_fixed_monthly(prices, assumptions))
    return fixed + usage_dollars(usage, prices, free_tier=free_tier)


def baseline_capacity(
    per: PerCreation, kind: Kind, prices: Prices = PRICES, assumptions: Assumptions = ASSUMPTIONS
) -> float:
    """Creations a month one baseline VM can do: its sustained CPU over the measured
    CPU-seconds per creation, or its worker processes over the model's time, the lower."""
    limits = [math.inf]
    cpu = per.total_cpu_seconds
    if cpu > 0:
        limits.append(prices.vm_sustained_vcpu[assumptions.vm] * SECONDS_PER_MONTH / cpu)
    waiting = model_seconds(kind, assumptions)
    if waiting > 0:
        limits.append(assumptions.baseline_worker_processes * SECONDS_PER_MONTH / waiting)
    return min(limits)


def break_even(
    suite_cost: Callable[[float], float],
    baseline_cost: Callable[[float], float],
    *,
    up_to: float,
) -> float | None:
    """The smallest monthly load at which the always-on baseline is no dearer than the suite,
    up to `up_to`; None when the suite stays cheaper. Scans a log grid for the first load where
    the baseline wins, then bisects between it and the load before."""
    if baseline_cost(0.0) <= suite_cost(0.0):
        return 0.0
    low = 0.0
    for exponent in range(0, 200):
        load = min(up_to, 10 ** (exponent / 10))
        if baseline_cost(load) <= suite_cost(load):
            high = load
            for _ in range(100):
                middle = (low + high) / 2
                if baseline_cost(middle) <= suite_cost(middle):
                    high = middle
                else:
                    low = middle
            return high
        low = load
        if load >= up_to:
            return None
    return None


# --- rendering -------------------------------------------------------------------------------


def usd(dollars: float) -> str:
    """Dollars to about three significant figures: $0.0108, $1.23, $49.00, $1,234."""
    if dollars == 0:
        return "$0"
    if abs(dollars) >= 1000:
        return f"${dollars:,.0f}"
    if abs(dollars) >= 1:
        return f"${dollars:,.2f}"
    digits = 2 - math.floor(math.log10(abs(dollars)))
    return f"${dollars:.{digits}f}"


def _number(value: float) -> str:
    if value == 0:
        return "0"
    if value >= 1e6:
        return f"{value / 1e6:,.3g} M"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def _quantity(line: Line) -> str:
    return f"{_number(line.quantity * 1000)} {line.unit}"


def _per_thousand_table(
    kind: Kind,
    suite: PerCreation,
    baseline: PerCreation,
    prices: Prices,
    assumptions: Assumptions,
) -> list[str]:
    """Line by line per 1000 creations; the baseline's fixed cost on the totals' rows."""
    ours = suite_lines(suite, kind, prices, assumptions)
    theirs = {line.label: line for line in baseline_lines(baseline, kind, prices, assumptions)}
    rows = []
    for line in ours:
        other = theirs.get(line.label)
        rows.append(
            [
                line.label,
                _quantity(line),
                usd(line.dollars * 1000),
                _quantity(other) if other else "—",
                usd(other.dollars * 1000) if other else "in the fixed cost",
            ]
        )
    fixed = f" + {usd(total(baseline_fixed_monthly(prices, assumptions)))} a month"

    def without_egress(lines: Sequence[Line]) -> float:
        return total([line for line in lines if line.label != EGRESS]) * 1000

    rows.append(
        [
            "**orchestration (without egress)**",
            "",
            f"**{usd(without_egress(ours))}**",
            "",
            f"**{usd(without_egress(list(theirs.values())))}**{fixed}",
        ]
    )
    rows.append(
        [
            "**total**",
            "",
            f"**{usd(total(ours) * 1000)}**",
            "",
            f"**{usd(total(list(theirs.values())) * 1000)}**{fixed}",
        ]
    )
    header = ["per 1000", "suite: quantity", "suite", "Redis + worker: quantity", "Redis + worker"]
    return _table(header, rows)


def _measured_table(
    suite: PerCreation, baseline: PerCreation, videos: PerCreation | None
) -> list[str]:
    """The counts the model was given, one column per stack."""
    columns = [("suite, image", suite), ("baseline, image", baseline)]
    if videos is not None:
        columns.append(("suite, video", videos))

    def by_name(values: Mapping[str, float]) -> str:
        return ", ".join(f"{name} {amount:.3g}" for name, amount in sorted(values.items())) or "—"

    def operations(per: PerCreation) -> str:
        return f"{per.firestore_reads:.3g} / {per.firestore_writes:.3g} / " + (
            f"{per.firestore_deletes:.3g}"
        )

    fields: list[tuple[str, Callable[[PerCreation], str]]] = [
        ("Firestore reads / writes / deletes", operations),
        ("Pub/Sub publishes", lambda per: f"{per.pubsub_publishes:.3g}"),
        ("invocations", lambda per: by_name(per.invocations)),
        ("CPU-seconds", lambda per: by_name(per.cpu_seconds)),
        ("media bytes (this run)", lambda per: f"{per.media_bytes:,.0f}"),
    ]
    header = ["per creation, measured", *(name for name, _ in columns)]
    return _table(header, [[label, *(show(per) for _, per in columns)] for label, show in fields])


def _video_counts(suite: PerCreation, assumptions: Assumptions) -> PerCreation:
    """A video creation when the harness ran none: the image path plus Veo's writes (one
    checkpoint, one progress write per poll while the model works)."""
    polls, waited, interval = 0, 0.0, assumptions.veo_poll_initial_seconds
    while waited < assumptions.video_model_seconds:
        polls += 1
        waited += interval
        interval = min(interval * 2, assumptions.veo_poll_max_seconds)
    return replace(
        suite,
        firestore_writes=suite.firestore_writes + 1 + polls,
        media_bytes=assumptions.video_bytes,
    )


def _zero_load_table(suite: PerCreation, prices: Prices, assumptions: Assumptions) -> list[str]:
    idle = suite_zero_load_monthly(prices, assumptions)
    fixed = baseline_fixed_monthly(prices, assumptions)
    rows = [
        [f"{line.label} ({_number(line.quantity)} {line.unit})", usd(line.dollars), "—"]
        for line in idle
    ]
    rows += [[line.label, "—", usd(line.dollars)] for line in fixed]
    free = suite_monthly(suite, "image", 0, free_tier=True, prices=prices, assumptions=assumptions)
    rows.append(["**total, list price**", f"**{usd(total(idle))}**", f"**{usd(total(fixed))}**"])
    rows.append(["**total, free tiers applied**", f"**{usd(free)}**", f"**{usd(total(fixed))}**"])
    return _table(["a month, no creations", "this suite", "Redis + worker"], rows)


LOADS = (0, 10_000, 100_000, 1_000_000, 10_000_000)


def _monthly_table(
    suite: PerCreation, baseline: PerCreation, prices: Prices, assumptions: Assumptions
) -> list[str]:
    capacity = baseline_capacity(baseline, "image", prices, assumptions)
    rows = []
    for load in LOADS:
        ours = suite_monthly(
            suite, "image", load, free_tier=True, prices=prices, assumptions=assumptions
        )
        theirs = baseline_monthly(
            baseline, "image", load, free_tier=True, prices=prices, assumptions=assumptions
        )
        past = " (more than one VM does)" if load > capacity else ""
        rows.append([f"{load:,}", usd(ours), usd(theirs) + past])
    return _table(["image creations a month", "this suite", "Redis + worker"], rows)


def _break_even_table(
    suite: PerCreation,
    video_suite: PerCreation,
    baseline: PerCreation,
    prices: Prices,
    assumptions: Assumptions,
) -> list[str]:
    unwaited = replace(assumptions, image_model_seconds=0.0)
    cases: list[tuple[str, Kind, PerCreation, Assumptions, bool]] = [
        ("images", "image", suite, assumptions, False),
        ("images", "image", suite, assumptions, True),
        ("images, without the model's time", "image", suite, unwaited, True),
        ("videos", "video", video_suite, assumptions, False),
        ("videos", "video", video_suite, assumptions, True),
    ]
    rows = []
    for label, kind, per, assumed, free_tier in cases:
        capacity = baseline_capacity(baseline, kind, prices, assumed)
        # Each design's bill for a month at a load, everything else held fixed.
        ours = partial(
            suite_monthly, per, kind, free_tier=free_tier, prices=prices, assumptions=assumed
        )
        theirs = partial(
            baseline_monthly,
            baseline,
            kind,
            free_tier=free_tier,
            prices=prices,
            assumptions=assumed,
        )
        found = break_even(ours, theirs, up_to=capacity)
        rows.append(
            [
                label,
                "applied" if free_tier else "none",
                f"{found:,.0f}" if found is not None else "none within one VM",
                f"{found / SECONDS_PER_MONTH:.3g} /s" if found is not None else "—",
                f"{capacity:,.0f}",
            ]
        )
    header = [
        "",
        "free tiers",
        "always-on is cheaper from (a month)",
        "average rate",
        f"one {assumptions.vm} does (a month)",
    ]
    return _table(header, rows)


def render_cost_section(
    suite: PerCreation,
    baseline: PerCreation,
    *,
    videos: PerCreation | None = None,
    prices: Prices = PRICES,
    assumptions: Assumptions = ASSUMPTIONS,
) -> str:
    """The `## Cost model` section of the benchmark report, as markdown."""
    video_suite = videos if videos is not None else _video_counts(suite, assumptions)
    modelled = (
        []
        if videos is not None
        else [
            "No video run was measured: a video is the image path's counts plus Veo's writes "
            f"({video_suite.firestore_writes - suite.firestore_writes:g} more: one checkpoint "
            "and one progress write per poll).",
            "",
        ]
    )
    out = [
        "## Cost model",
        "",
        f"Orchestration only, from list prices (USD) read on {prices.as_of.isoformat()}: "
        "function requests and instance time, Firestore, Pub/Sub, Cloud Storage operations and "
        "one download of each result, for this suite on Cloud Functions (2nd gen) against an "
        f"always-on Memorystore Redis + {assumptions.vm} worker doing the same Firestore and "
        "Cloud Storage work. The models themselves (Imagen, Veo) cost far more than any line "
        "here, and the same in both, so they are left out. Computed by `benchmarks/cost.py` "
        "from the counts measured above:",
        "",
        *_measured_table(suite, baseline, videos),
        "",
        "### Per 1000 image creations (list price, no free tier)",
        "",
        *_per_thousand_table("image", suite, baseline, prices, assumptions),
        "",
        "### Per 1000 videos (one 8 s clip each; list price, no free tier)",
        "",
        *modelled,
        *_per_thousand_table("video", video_suite, baseline, prices, assumptions),
        "",
        "### A month at zero load",
        "",
        *_zero_load_table(suite, prices, assumptions),
        "",
        "### A month at a load (images; free tiers applied to both)",
        "",
        *_monthly_table(suite, baseline, prices, assumptions),
        "",
        "### Break-even: where always-on gets cheaper",
        "",
        *_break_even_table(suite, video_suite, baseline, prices, assumptions),
        "",
        "Below the break-even the suite is cheaper, most of all idle; above it the always-on "
        "pair is, until one VM is full: then it needs a bigger VM or more of them, while the "
        "suite scales by itself. One VM's capacity is its sustained vCPU over the baseline's "
        "measured CPU-seconds per creation, or its "
        f"{assumptions.baseline_worker_processes} Celery processes over the model's time per "
        "creation, whichever is lower.",
        "",
        "### Prices",
        "",
        f"Read on {prices.as_of.isoformat()} from stored copies of the pages (a copy can be "
        "older than that day); ASSUMPTION marks a number no copy gave.",
        "",
        *_table(["price", "value", "source", "how read"], _price_rows(prices, assumptions)),
        "",
        "### Assumptions",
        "",
        *_assumption_rows(assumptions),
    ]
    return "\n".join(out) + "\n"


def _price_rows(prices: Prices, assumptions: Assumptions) -> list[list[str]]:
    p, vm = prices, assumptions.vm
    rows: list[tuple[str, str, str]] = [
        ("Cloud Run vCPU-second (Tier 1, CPU during requests)", f"${p.run_vcpu_second:.8f}", "run"),
        ("Cloud Run GiB-second", f"${p.run_gib_second:.8f}", "run"),
        ("Cloud Run requests", f"${p.run_request * 1e6:.2f} per million", "run"),
        (
            "Cloud Run free tier a month",
            f"{p.run_free_vcpu_seconds:,.0f} vCPU-s, {p.run_free_gib_seconds:,.0f} GiB-s, "
            f"{p.run_free_requests:,.0f} requests",
            "run",
        ),
        ("Function vCPU by memory", "256 MiB .167, 512 MiB .333, 1 GiB .583, 2 GiB 1", "memory"),
        (
            "Firestore read / write / delete (nam5)",
            f"${p.firestore_read * 1e5:.2f} / ${p.firestore_write * 1e5:.2f} / "
            f"${p.firestore_delete * 1e5:.2f} per 100,000",
            "firestore",
        ),
        (
            "Firestore free quota a day",
            f"{p.firestore_free_reads_per_day:,.0f} reads, {p.firestore_free_writes_per_day:,.0f} "
            f"writes, {p.firestore_free_deletes_per_day:,.0f} deletes",
            "firestore",
        ),
        (
            "Pub/Sub throughput",
            f"${p.pubsub_per_tib:.0f} per TiB, at least {p.pubsub_min_request_bytes} B a request, "
            f"{p.pubsub_free_bytes / GIB:.0f} GiB free a month",
            "pubsub",
        ),
        (
            "Cloud Storage Class A / Class B",
            f"${p.gcs_class_a * 1000:.4f} / ${p.gcs_class_b * 1000:.4f} per 1000",
            "storage",
        ),
        ("Internet egress (first TiB)", f"${p.egress_per_gib:.2f} per GiB", "storage"),
        (
            "Cloud Scheduler",
            f"${p.scheduler_job_month:.2f} a job-month, {p.scheduler_free_jobs} free",
            "scheduler",
        ),
        (
            "Memorystore Redis Basic",
            f"${p.redis_basic_gib_hour:.3f} per GiB-hour, {p.redis_min_gib:g} GiB at least",
            "redis",
        ),
        (
            f"{vm} on demand",
            f"${p.vm_hour[vm]:.7f} an hour, {p.vm_sustained_vcpu[vm]:g} vCPU sustained",
            "vm",
        ),
        ("Balanced persistent disk", f"${p.disk_gib_month:.2f} per GiB-month", "vm"),
    ]
    return [
        [name, value, prices.source(key).url, prices.source(key).read] for name, value, key in rows
    ]


def _assumption_rows(assumptions: Assumptions) -> list[str]:
    a = assumptions
    return [
        f"- Downloads: one per result, {a.image_bytes / 1e6:g} MB per image (an Imagen "
        f"1024x1024 PNG) and {a.video_bytes / 1e6:g} MB per video (a Veo 8 s 720p clip at "
        "about 4 Mbit/s); the benchmark's own media (256-px PNGs, and the offline provider's "
        "0.3 MB 1024-px PNGs and 0.26 MB 640x360 clips) are smaller.",
        f"- `generate` is billed while the model works: {a.image_model_seconds:g} s per image, "
        f"{a.video_model_seconds:g} s per video, at its 1 GiB and 1 vCPU. The baseline's worker "
        "waits too, but inside the VM it already pays for: it costs capacity, not money.",
        "- Each invocation holds its instance for its CPU-seconds over its vCPU share, plus "
        f"{a.io_wait_seconds * 1000:g} ms waiting on Firestore and Pub/Sub, rounded up to "
        "100 ms (unless the harness measured wall time). Memory and vCPU per function from "
        "terraform/functions.tf: submit 512 MiB (0.333 vCPU), generate 1 GiB (1 vCPU), stitch "
        "2 GiB (1 vCPU), refund, dead-letter and sweep 256 MiB (0.167 vCPU). Local CPU-seconds "
        "are taken as Cloud Run vCPU-seconds.",
        f"- Pub/Sub: every message is billed at the {a.pubsub_message_bytes}-byte minimum, once "
        f"published and once for each of its topic's {a.pubsub_deliveries_per_publish} push "
        "subscription(s).",
        f"- Cloud Storage per creation, unless measured: the suite {a.suite_class_a:g} Class A "
        "operations (one upload; a first attempt's image draft is not settled, so nothing is "
        f"listed), the baseline {a.baseline_class_a:g}; one Class B per download. Cloud "
        "Storage's own free tier is left out.",
        f"- Zero load: the sweeper ticks {a.sweep_ticks_per_month:,.0f} times a month "
        f"(every 5 minutes), each one `sweep` invocation of {a.sweep_tick_seconds:g} s, "
        f"{a.sweep_reads_per_tick:g} Firestore reads (empty queries bill one read each) and "
        "one message published and pushed. Every function scales to zero (`min_instances` 0).",
        f"- The always-on baseline: one {a.vm} running the API and the Celery worker "
        f"({a.baseline_worker_processes} processes), Memorystore Redis Basic "
        f"{a.redis_gib:g} GiB, a {a.disk_gib:g} GiB boot disk; no load balancer, no second "
        "zone. Its Firestore and Cloud Storage work is priced like the suite's.",
        "- Free tiers are per billing account and per month (Firestore's per day, counted here "
        "as 730/24 days of even load); a project that shares its billing account with others "
        "shares them.",
    ]


# --- the harness's JSON ----------------------------------------------------------------------

_ALIASES = {
    "firestore_reads": ("firestore_reads", "reads"),
    "firestore_writes": ("firestore_writes", "writes"),
    "firestore_deletes": ("firestore_deletes", "deletes"),
    "pubsub_publishes": ("pubsub_publishes", "publishes", "pubsub_published"),
    "media_bytes": ("media_bytes", "bytes"),
    "storage_class_a": ("storage_class_a",),
    "storage_class_b": ("storage_class_b",),
}


def _number_at(values: Mapping[str, Any], names: Sequence[str]) -> float | None:
    for name in names:
        value = values.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


def _by_name(value: object, spread_over: Sequence[str]) -> dict[str, float]:
    """A {name: number} field; a bare number is spread evenly over `spread_over` (or kept
    under "all" when there is nothing to spread it over)."""
    if isinstance(value, Mapping):
        return {
            str(name): float(amount)
            for name, amount in value.items()
            if isinstance(amount, int | float) and not isinstance(amount, bool)
        }
    if isinstance(value, int | float) and not isinstance(value, bool):
        names = list(spread_over) or ["all"]
        return {name: float(value) / len(names) for name in names}
    return {}


def per_creation_from(values: Mapping[str, Any]) -> PerCreation:
    """A `PerCreation` from one stack's entry of the harness's JSON.

    Expected keys (means per creation): `firestore_reads`, `firestore_writes`,
    `firestore_deletes`, `pubsub_publishes`, `invocations` ({function: n}), `cpu_seconds`
    ({function or role: s}, or one number), `media_bytes`; optional `wall_seconds`
    ({function: s}), `storage_class_a`, `storage_class_b`. Tolerated: the short names `reads`,
    `writes`, `deletes`, `publishes`; a bare number of invocations (kept under "all");
    missing counts (0).
    """
    invocations = _by_name(values.get("invocations"), [])
    numbers = {key: _number_at(values, names) for key, names in _ALIASES.items()}
    return PerCreation(
        firestore_reads=numbers["firestore_reads"] or 0.0,
        firestore_writes=numbers["firestore_writes"] or 0.0,
        firestore_deletes=numbers["firestore_deletes"] or 0.0,
        pubsub_publishes=numbers["pubsub_publishes"] or 0.0,
        invocations=invocations,
        cpu_seconds=_by_name(values.get("cpu_seconds"), list(invocations)),
        media_bytes=numbers["media_bytes"] or 0.0,
        wall_seconds=_by_name(values.get("wall_seconds"), list(invocations)),
        storage_class_a=numbers["storage_class_a"],
        storage_class_b=numbers["storage_class_b"],
    )


def per_creation_of_run(
    stack: Mapping[str, Any], *, filtered_out: Collection[str] = ()
) -> PerCreation:
    """A `PerCreation` from one stack of a `make bench` run (`build/bench.json`'s
    `stacks.<name>`): its counts per creation, and the burst's CPU by process role divided by
    the burst's creations. The sweep's ticks are left out: they come from a clock, whatever the
    load (the zero-load rows price them); so are the invocations (and their CPU) of the roles in
    `filtered_out`, whose production subscription filters out what woke them locally."""
    dropped = {"sweep", *filtered_out}
    counts = stack["per_creation"]
    burst = stack["burst"]
    creations = max(1, int(burst.get("creations") or 0))
    cpu = (burst.get("cpu_seconds") or {}).get("by_role") or {}
    return per_creation_from(
        {
            "firestore_reads": counts.get("firestore_reads", 0.0),
            "firestore_writes": counts.get("firestore_writes", 0.0),
            "pubsub_publishes": counts.get("pubsub_publishes", 0.0),
            "invocations": {
                role: n
                for role, n in (counts.get("invocations") or {}).items()
                if role not in dropped
            },
            "cpu_seconds": {
                role: seconds / creations for role, seconds in cpu.items() if role not in dropped
            },
        }
    )


def _find_section(document: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    """`document[name]`, or the first `name` one level down (under "per_creation", say)."""
    found = document.get(name)
    if isinstance(found, Mapping):
        return found
    for value in document.values():
        if isinstance(value, Mapping) and isinstance(value.get(name), Mapping):
            return value[name]  # type: ignore[no-any-return]
    return None


def load_bench(path: Path) -> tuple[PerCreation, PerCreation, PerCreation | None]:
    """(suite, baseline, videos or None) from the harness's JSON: sections `suite` and
    `baseline` (and `videos`, the suite's video creations), at the top or one level down, each
    as `per_creation_from` reads."""
    document = json.loads(path.read_text())
    if not isinstance(document, Mapping):
        raise ValueError(f"{path}: expected a JSON object")
    sections = {name: _find_section(document, name) for name in ("suite", "baseline", "videos")}
    suite, baseline, videos = sections["suite"], sections["baseline"], sections["videos"]
    if suite is None or baseline is None:
        raise ValueError(f"{path}: expected objects `suite` and `baseline` (see benchmarks.cost)")
    return (
        per_creation_from(suite),
        per_creation_from(baseline),
        per_creation_from(videos) if videos is not None else None,
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, required=True, help="the benchmark harness's JSON")
    options = parser.parse_args(argv)
    suite, baseline, videos = load_bench(options.json)
    print(render_cost_section(suite, baseline, videos=videos), end="")


if __name__ == "__main__":
    main()
