"""`make bench` in miniature, so the harness keeps working: `benchmarks.throughput` with tiny
sizes (3 sequential, a 2 x 2 burst, 3 floor samples, one cold-start run of a few modules) in
its own process, on its own emulators, writing to a temporary Markdown file and JSON file.

Both stacks run when redis-server and the baseline are there; otherwise the suite alone, and
the baseline's test is skipped with the reason (a failure when CI is set: CI must run both).
Nothing here asserts a timing: only that every creation reached `draft`, that the numbers are
there and positive, that the counts per creation are plausible, and that what the Markdown file
has outside its markers survives the rewrite.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from typing import Any

import pytest

from benchmarks.harness.report import BEGIN, END
from benchmarks.harness.stacks import baseline_class
from tests.support.paths import REPO

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SEQUENTIAL, USERS, PER_USER = 3, 2, 2
INTRO = "# Hand-written intro\n\nKept as it is.\n\n"
OUTRO = "\n\n## Notes of ours\n\nAlso kept.\n"


def baseline_missing() -> str | None:
    if shutil.which("redis-server") is None:
        return "redis-server is not installed"
    found, why = baseline_class()
    return why if found is None else None


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench")
    markdown, raw = out / "benchmarks.md", out / "bench.json"
    markdown.write_text(f"{INTRO}{BEGIN}\nnumbers of an earlier run\n{END}{OUTRO}")
    stacks = "suite" if baseline_missing() else "suite,baseline"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BENCH_")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.throughput",
            f"--sequential={SEQUENTIAL}",
            f"--users={USERS}",
            f"--per-user={PER_USER}",
            f"--stacks={stacks}",
            "--floor-samples=3",
            "--cold-runs=1",
            "--cold-modules=submit,generate,api",
            f"--out={markdown}",
            f"--json={raw}",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return {"result": json.loads(raw.read_text()), "markdown": markdown.read_text()}


def check_stack(numbers: dict[str, Any], *, publishes: bool) -> None:
    assert numbers["sequential"]["statuses"] == {"draft": SEQUENTIAL}
    assert numbers["burst"]["statuses"] == {"draft": USERS * PER_USER}
    for phase in ("sequential", "burst"):
        for latency in ("submit_to_202_ms", "submit_to_draft_ms"):
            summary = numbers[phase][latency]
            assert 0 < summary["p50"] <= summary["p90"] <= summary["p99"], (phase, latency)
        assert numbers[phase]["cpu_seconds"]["stack"] > 0
        assert numbers[phase]["cpu_seconds"]["emulators"] > 0
    assert numbers["burst"]["creations_per_second"] > 0
    assert numbers["burst"]["submits_per_second"] > 0
    assert numbers["cpu_per_creation"]["burst"] > 0
    counts = numbers["per_creation"]
    # A debit, a pending creation, a claim and a draft at the very least.
    assert counts["firestore_writes"] >= 3
    assert counts["firestore_commits"] >= 2
    assert counts["firestore_reads"] >= 1
    assert counts["invocations_total"] >= 1
    if publishes:
        assert counts["pubsub_publishes"] >= 1


def test_the_suite_is_measured(bench: dict[str, Any]) -> None:
    result = bench["result"]
    suite = result["stacks"]["suite"]
    check_stack(suite, publishes=True)
    assert suite["per_creation"]["invocations"]["submit"] == 1
    assert suite["per_creation"]["invocations"]["generate"] >= 1
    floors = result["floors"]
    for name in ("push_ms", "listener_ms", "commit_publish_ms"):
        assert floors[name]["p50"] > 0, name
    assert floors["commit_publish_per_second"] > 0
    cold = result["cold_start"]["suite"]
    assert set(cold) == {"submit", "generate"}
    assert all(seconds["main"] and seconds["main"] > 0 for seconds in cold.values()), cold
    assert result["machine"]["cores"] >= 1
    assert result["versions"]["google-cloud-firestore"]


def test_the_markdown_keeps_what_is_outside_its_markers(bench: dict[str, Any]) -> None:
    text = bench["markdown"]
    assert text.startswith(INTRO + BEGIN)
    assert text.endswith(END + OUTRO)
    assert "numbers of an earlier run" not in text
    assert "creations/s" in text


def test_the_baseline_is_measured(bench: dict[str, Any]) -> None:
    missing = baseline_missing()
    if missing is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must benchmark the baseline too: {missing}")
        pytest.skip(f"baseline not measured: {missing}")
    result = bench["result"]
    # The baseline queues through Redis, not Pub/Sub.
    check_stack(result["stacks"]["baseline"], publishes=False)
    assert result["cold_start"]["baseline"]["api"]["main"] > 0
    # Both measured: the generated section ends with the cost model priced from this run.
    assert "## Cost model" in bench["markdown"]
    assert "### Per 1000 image creations" in bench["markdown"]
