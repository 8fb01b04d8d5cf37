"""benchmarks.cost: the arithmetic on hand-made counts, zero load, break-even, and the shape
of the rendered section."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from benchmarks import cost
from benchmarks.cost import (
    ASSUMPTIONS,
    PRICES,
    Assumptions,
    PerCreation,
    baseline_capacity,
    baseline_fixed_monthly,
    baseline_lines,
    baseline_monthly,
    billed_seconds,
    break_even,
    load_bench,
    per_creation_from,
    render_cost_section,
    suite_lines,
    suite_monthly,
    suite_zero_load_monthly,
    total,
    usd,
)

# The brief's plausible run: 3 invocations, 6 writes, 3 reads, 2 publishes, 40 ms CPU.
SUITE = PerCreation(
    firestore_reads=3,
    firestore_writes=6,
    pubsub_publishes=2,
    invocations={"submit": 1, "generate": 1, "refund": 1},
    cpu_seconds={"submit": 0.012, "generate": 0.020, "refund": 0.008},
    media_bytes=38_000,
)
BASELINE = PerCreation(
    firestore_reads=2,
    firestore_writes=3,
    cpu_seconds={"api": 0.012, "worker": 0.018},
    media_bytes=38_000,
)
# Nothing assumed beyond what a test sets: no model wait, no downloads, no storage calls.
BARE = replace(
    ASSUMPTIONS,
    image_model_seconds=0.0,
    video_model_seconds=0.0,
    image_bytes=0.0,
    video_bytes=0.0,
    suite_class_a=0.0,
    baseline_class_a=0.0,
    class_b_per_download=0.0,
    io_wait_seconds=0.0,
)


def line(lines: list[cost.Line], label: str) -> cost.Line:
    return next(item for item in lines if item.label == label)


def test_a_thousand_creations_of_six_writes_cost_six_thousand_writes_at_the_list_price() -> None:
    writes = line(suite_lines(SUITE, "image", PRICES, BARE), "Firestore writes")
    assert writes.quantity * 1000 == 6000
    assert writes.dollars * 1000 == pytest.approx(6000 * 0.18 / 100_000)  # $0.0108
    assert usd(writes.dollars * 1000) == "$0.0108"


def test_the_baseline_pays_the_same_prices_for_its_own_counts() -> None:
    lines = baseline_lines(BASELINE, "image", PRICES, BARE)
    assert line(lines, "Firestore writes").dollars == pytest.approx(3 * 0.18 / 100_000)
    assert line(lines, "Firestore reads").dollars == pytest.approx(2 * 0.06 / 100_000)
    # No functions, no Pub/Sub: the VM and Redis are its fixed cost.
    assert {item.label for item in lines}.isdisjoint({cost.REQUESTS, cost.VCPU_TIME, cost.PUBSUB})


def test_function_time_is_cpu_over_the_vcpu_share_rounded_up_to_100_ms_per_invocation() -> None:
    # submit: 512 MiB, 0.333 vCPU; 0.05 CPU-s is 0.15 s of wall time, billed 0.2 s.
    per = PerCreation(invocations={"submit": 1}, cpu_seconds={"submit": 0.05})
    assert billed_seconds("submit", per, PRICES, BARE) == pytest.approx(0.2)
    lines = suite_lines(per, "image", PRICES, BARE)
    assert line(lines, cost.VCPU_TIME).quantity == pytest.approx(0.2 * 0.333)
    assert line(lines, cost.MEMORY_TIME).quantity == pytest.approx(0.2 * 0.5)
    assert line(lines, cost.REQUESTS).dollars == pytest.approx(0.40 / 1_000_000)
    # Two invocations sharing the CPU are each rounded: 2 x 0.1 s, not 0.2 s once rounded.
    twice = PerCreation(invocations={"refund": 2}, cpu_seconds={"refund": 0.002})
    assert billed_seconds("refund", twice, PRICES, BARE) == pytest.approx(0.2)


def test_measured_wall_time_wins_over_the_cpu_estimate() -> None:
    per = PerCreation(
        invocations={"generate": 1}, cpu_seconds={"generate": 0.01}, wall_seconds={"generate": 1.23}
    )
    assert billed_seconds("generate", per, PRICES, BARE) == pytest.approx(1.3)


def test_pubsub_bills_each_publish_and_push_at_the_1000_byte_minimum() -> None:
    lines = suite_lines(PerCreation(pubsub_publishes=2), "image", PRICES, BARE)
    assert line(lines, cost.PUBSUB).dollars == pytest.approx(4 * 1000 / 2**40 * 40)


def test_the_model_time_is_billed_on_generate_only_when_generate_ran() -> None:
    waited = replace(BARE, image_model_seconds=5.0, video_model_seconds=60.0)
    one_gib_one_vcpu = 1.0 * 0.000024 + 1.0 * 0.0000025
    image = line(suite_lines(SUITE, "image", PRICES, waited), cost.HELD)
    video = line(suite_lines(SUITE, "video", PRICES, waited), cost.HELD)
    assert image.dollars == pytest.approx(5 * one_gib_one_vcpu)
    assert video.dollars == pytest.approx(60 * one_gib_one_vcpu)
    no_generate = PerCreation(invocations={"submit": 1})
    assert line(suite_lines(no_generate, "image", PRICES, waited), cost.HELD).dollars == 0


def test_egress_is_one_download_of_the_assumed_size() -> None:
    sized = replace(BARE, image_bytes=2**30)
    egress = line(suite_lines(SUITE, "image", PRICES, sized), cost.EGRESS)
    assert egress.dollars == pytest.approx(0.12)
    assert (
        egress.dollars
        == line(baseline_lines(BASELINE, "image", PRICES, sized), cost.EGRESS).dollars
    )


def test_measured_storage_operations_replace_the_assumed_ones() -> None:
    per = replace(SUITE, storage_class_a=2.0, storage_class_b=3.0)
    lines = suite_lines(per, "image", PRICES, ASSUMPTIONS)
    assert line(lines, cost.CLASS_A).dollars == pytest.approx(2 * 0.005 / 1000)
    assert line(lines, cost.CLASS_B).dollars == pytest.approx(3 * 0.0004 / 1000)
    assumed = suite_lines(SUITE, "image", PRICES, ASSUMPTIONS)
    assert line(assumed, cost.CLASS_A).quantity == ASSUMPTIONS.suite_class_a


def test_zero_load_the_suite_pays_only_the_sweeper_and_the_baseline_its_fixed_cost() -> None:
    idle = suite_zero_load_monthly(PRICES, ASSUMPTIONS)
    ticks = 730 * 12
    reads = line(idle, "Sweeper's Firestore reads")
    assert reads.quantity == ticks * 5
    assert reads.dollars == pytest.approx(ticks * 5 * 0.06 / 100_000)
    assert line(idle, "Cloud Scheduler job (sweep)").dollars == pytest.approx(0.10)
    assert total(idle) < 1.0
    # Within every free tier (and the 3 free Scheduler jobs), idle costs nothing.
    assert suite_monthly(SUITE, "image", 0, free_tier=True) == 0
    assert suite_monthly(SUITE, "image", 0, free_tier=False) == pytest.approx(total(idle))
    fixed = total(baseline_fixed_monthly(PRICES, ASSUMPTIONS))
    assert fixed == pytest.approx(730 * (0.049 + 0.0167515) + 10 * 0.10)
    assert baseline_monthly(BASELINE, "image", 0, free_tier=True) == pytest.approx(fixed)


def test_a_month_at_a_load_takes_the_free_tiers_off_first() -> None:
    writes_only = PerCreation(firestore_writes=1)
    free_writes = 20_000 * 730 / 24
    assert suite_monthly(writes_only, "image", free_writes, free_tier=True, assumptions=BARE) == 0
    over = suite_monthly(
        writes_only, "image", free_writes + 100_000, free_tier=True, assumptions=BARE
    )
    assert over == pytest.approx(0.18)


def test_break_even_finds_where_the_lines_cross_and_none_when_they_do_not() -> None:
    found = break_even(lambda n: 0.002 * n, lambda n: 50 + 0.001 * n, up_to=1e9)
    assert found == pytest.approx(50_000, rel=1e-6)
    assert break_even(lambda n: 0.001 * n, lambda n: 50 + 0.001 * n, up_to=1e9) is None
    assert break_even(lambda n: 0.002 * n, lambda n: 50 + 0.001 * n, up_to=10_000) is None
    assert break_even(lambda n: 5 + n, lambda n: 1 + n, up_to=10) == 0


def test_break_even_of_the_sample_matches_the_closed_form() -> None:
    fixed = total(baseline_fixed_monthly(PRICES, ASSUMPTIONS))
    per_suite = total(suite_lines(SUITE, "image", PRICES, ASSUMPTIONS))
    per_baseline = total(baseline_lines(BASELINE, "image", PRICES, ASSUMPTIONS))
    idle = total(suite_zero_load_monthly(PRICES, ASSUMPTIONS))
    expected = (fixed - idle) / (per_suite - per_baseline)
    found = break_even(
        lambda n: suite_monthly(SUITE, "image", n, free_tier=False),
        lambda n: baseline_monthly(BASELINE, "image", n, free_tier=False),
        up_to=1e12,
    )
    assert found == pytest.approx(expected, rel=1e-6)


def test_one_vm_is_limited_by_its_cpu_or_by_its_processes_waiting_on_the_model() -> None:
    month = 730 * 3600
    unwaited = replace(ASSUMPTIONS, image_model_seconds=0.0)
    assert baseline_capacity(BASELINE, "image", PRICES, unwaited) == pytest.approx(
        0.5 * month / 0.03
    )
    assert baseline_capacity(BASELINE, "video", PRICES, ASSUMPTIONS) == pytest.approx(
        2 * month / 60
    )


def test_prices_are_dated_and_each_names_its_source() -> None:
    assert PRICES.as_of.year >= 2025
    keys = {source.key for source in PRICES.sources}
    assert keys == {"run", "memory", "firestore", "pubsub", "storage", "scheduler", "redis", "vm"}
    assert all(source.url.startswith("https://cloud.google.com/") for source in PRICES.sources)
    assumed = {source.key for source in PRICES.sources if source.read.startswith("ASSUMPTION")}
    assert assumed == {"redis", "vm"}


def test_the_function_sizes_are_those_terraform_deploys() -> None:
    terraform = (Path(__file__).parents[2] / "terraform" / "functions.tf").read_text()
    for name, size in cost.FUNCTIONS.items():
        found = re.search(
            rf'"?{re.escape(name)}"?\s*=\s*{{[^}}]*available_memory_mb = (\d+)', terraform
        )
        assert found is not None, name
        assert int(found.group(1)) == size.memory_mib, name


SECTIONS = (
    "## Cost model",
    "### Per 1000 image creations",
    "### Per 1000 videos",
    "### A month at zero load",
    "### A month at a load",
    "### Break-even",
    "### Prices",
    "### Assumptions",
)


def test_the_section_has_its_parts_in_order_and_well_formed_tables() -> None:
    text = render_cost_section(SUITE, BASELINE)
    places = [text.index(heading) for heading in SECTIONS]
    assert places == sorted(places)
    assert text.startswith("## Cost model\n")
    for block in re.findall(r"((?:^\|.*\|\n)+)", text, re.MULTILINE):
        rows = block.splitlines()
        assert re.fullmatch(r"\|(---\|)+", rows[1]), rows[1]
        widths = {row.count("|") for row in rows}
        assert len(widths) == 1, block
    assert PRICES.as_of.isoformat() in text
    assert "ASSUMPTION" in text
    assert "No video run was measured" in text
    assert "$49.00" in text  # the always-on pair's month: Redis + e2-small + disk


def test_a_measured_video_run_replaces_the_modelled_one() -> None:
    videos = replace(SUITE, firestore_writes=9)
    text = render_cost_section(SUITE, BASELINE, videos=videos)
    assert "No video run was measured" not in text
    assert "suite, video" in text


def test_the_loader_reads_the_harness_json_and_tolerates_its_variants(tmp_path: Path) -> None:
    document = {
        "machine": {"cores": 2},
        "per_creation": {
            "suite": {
                "firestore_reads": 3,
                "writes": 6,
                "pubsub_publishes": 2,
                "invocations": {"submit": 1, "generate": 1, "refund": 1},
                "cpu_seconds": 0.03,
                "media_bytes": 1000,
            },
            "baseline": {
                "firestore_reads": 2,
                "firestore_writes": 3,
                "cpu_seconds": {"worker": 0.03},
            },
        },
    }
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(document))
    suite, baseline, videos = load_bench(path)
    assert videos is None
    assert (suite.firestore_reads, suite.firestore_writes, suite.pubsub_publishes) == (3, 6, 2)
    assert suite.cpu_seconds == pytest.approx({"submit": 0.01, "generate": 0.01, "refund": 0.01})
    assert suite.storage_class_a is None
    assert baseline.total_cpu_seconds == pytest.approx(0.03)
    assert baseline.invocations == {}
    assert per_creation_from({}) == PerCreation()


def test_the_loader_refuses_a_document_without_both_stacks(tmp_path: Path) -> None:
    path = tmp_path / "bench.json"
    path.write_text(json.dumps({"suite": {}}))
    with pytest.raises(ValueError, match="baseline"):
        load_bench(path)


def test_the_cli_prints_the_section(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bench.json"
    path.write_text(json.dumps({"suite": {"writes": 6}, "baseline": {"writes": 3}}))
    cost.main(["--json", str(path)])
    assert capsys.readouterr().out.startswith("## Cost model\n")


@pytest.mark.parametrize(
    ("dollars", "shown"),
    [
        (0, "$0"),
        (0.0108, "$0.0108"),
        (0.000146, "$0.000146"),
        (12.2286, "$12.23"),
        (3427.4, "$3,427"),
    ],
)
def test_dollars_are_shown_to_about_three_figures(dollars: float, shown: str) -> None:
    assert usd(dollars) == shown


def test_assumptions_are_a_frozen_value() -> None:
    with pytest.raises(AttributeError):
        ASSUMPTIONS.vm = "e2-medium"  # type: ignore[misc]
    assert isinstance(replace(ASSUMPTIONS, vm="e2-medium"), Assumptions)
