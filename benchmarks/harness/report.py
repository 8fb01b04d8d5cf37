"""The results as a table (terminal and Markdown), the generated part of docs/benchmarks.md,
and the raw numbers as JSON."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

BEGIN = "<!-- bench:begin -->"
END = "<!-- bench:end -->"

TEMPLATE = f"""# Benchmarks: the suite's local stack against a Celery + Redis worker

`make bench` runs the suite's local stack (what `make dev` starts) and a baseline of the
design it replaces (a Flask API and a Celery + Redis worker doing the identical Firestore and
Cloud Storage work per creation) one after the other on the same emulators and machine, and
measures the floors of the hops the suite uses in the same run. How it measures, and how to
run it with other sizes: benchmarks/README.md.

The section between the markers below is rewritten by each run; everything else in this file
is kept as it is.

The generated section ends with the cost model (`benchmarks/cost.py`), priced from the counts
the run measured.

{BEGIN}
{END}
"""

Row = tuple[str, list[str], str]  # label, one cell per stack, ratio suite / baseline


def _get(data: Mapping[str, Any], path: str) -> Any:
    found: Any = data
    for key in path.split("."):
        if not isinstance(found, Mapping) or key not in found:
            return None
        found = found[key]
    return found


def _num(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def _ratio(values: Sequence[Any]) -> str:
    """first / second, for two positive numbers (a ratio of a difference or of a missing
    value says nothing)."""
    if len(values) < 2 or not all(isinstance(v, int | float) and v > 0 for v in values[:2]):
        return ""
    return f"{values[0] / values[1]:.2f}x"


def rows(result: Mapping[str, Any]) -> list[Row]:
    stacks: Mapping[str, Any] = result["stacks"]
    names = list(stacks)
    out: list[Row] = []

    def scalar(label: str, path: str, digits: int = 1) -> None:
        values = [_get(stacks[n], path) for n in names]
        out.append((label, [_num(v, digits) for v in values], _ratio(values)))

    def percentiles(label: str, path: str) -> None:
        cells, p50s = [], []
        for n in names:
            s = _get(stacks[n], path) or {}
            cells.append(
                f"{_num(s.get('p50'), 0)} / {_num(s.get('p90'), 0)} / {_num(s.get('p99'), 0)}"
            )
            p50s.append(s.get("p50"))
        out.append((label, cells, _ratio(p50s) + " (p50)" if _ratio(p50s) else ""))

    sizes = result["options"]
    seq, users, per = sizes["sequential"], sizes["users"], sizes["per_user"]
    percentiles(
        f"{seq} sequential: submit -> 202, p50 / p90 / p99 ms", "sequential.submit_to_202_ms"
    )
    percentiles(
        f"{seq} sequential: submit -> draft seen, p50 / p90 / p99 ms",
        "sequential.submit_to_draft_ms",
    )
    percentiles(f"burst {users}x{per}: submit -> 202, p50 / p90 / p99 ms", "burst.submit_to_202_ms")
    percentiles(
        f"burst {users}x{per}: submit -> draft seen, p50 / p90 / p99 ms", "burst.submit_to_draft_ms"
    )
    scalar("burst: creations/s (first submit to last draft)", "burst.creations_per_second")
    scalar("burst: submits accepted/s", "burst.submits_per_second")
    scalar("burst: submits/s against the bare commit + publish loop", "submit_vs_floor", 2)
    scalar(
        "sequential: submit -> draft p50 above the suite's floors' sum, ms",
        "sequential_draft_p50_above_floor_ms",
        0,
    )
    scalar(
        "sequential: submit -> draft p99 above the suite's floors' sum, ms",
        "sequential_draft_p99_above_floor_ms",
        0,
    )
    scalar("CPU-s per creation, the stack's processes (burst)", "cpu_per_creation.burst", 3)
    scalar(
        "CPU-s per creation, the stack's processes (sequential)", "cpu_per_creation.sequential", 3
    )
    scalar("CPU-s per creation, the emulators (burst)", "cpu_per_creation.emulators_burst", 3)
    for key in ("firestore", "pubsub", "gcs"):
        scalar(
            f"  CPU-s per creation, {key} emulator (burst)",
            f"cpu_per_creation.emulator_{key}_burst",
            3,
        )
    scalar("Firestore documents read per creation", "per_creation.firestore_reads", 2)
    scalar("Firestore writes per creation", "per_creation.firestore_writes", 2)
    scalar("Firestore commits per creation", "per_creation.firestore_commits", 2)
    scalar("Pub/Sub messages published per creation", "per_creation.pubsub_publishes", 2)
    scalar("invocations per creation (HTTP requests + tasks)", "per_creation.invocations_total", 2)
    roles = sorted({r for n in names for r in (_get(stacks[n], "per_creation.invocations") or {})})
    for role in roles:
        scalar(f"  invocations of {role}", f"per_creation.invocations.{role}", 2)
    roles = sorted({r for n in names for r in (_get(stacks[n], "burst.cpu_seconds.by_role") or {})})
    for role in roles:
        values = [_get(stacks[n], f"burst.cpu_seconds.by_role.{role}") for n in names]
        per_creation = [
            None if v is None else v / stacks[n]["burst"]["creations"]
            for v, n in zip(values, names, strict=True)
        ]
        out.append(
            (f"  CPU-s per creation, {role} (burst)", [_num(v, 3) for v in per_creation], "")
        )
    return out


def target_rows(result: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """Issue 11's targets for the suite: (target, what was measured, met?)."""
    stacks: Mapping[str, Any] = result["stacks"]
    suite, baseline = stacks.get("suite"), stacks.get("baseline")
    if suite is None:
        return []
    out: list[tuple[str, str, str]] = []

    def check(target: str, value: Any, limit: Any, at_most: bool, digits: int = 2) -> None:
        if value is None or limit is None:
            out.append((target, _num(value, digits), "-"))
            return
        met = value <= limit if at_most else value >= limit
        out.append((target, _num(value, digits), "met" if met else "missed"))

    if baseline is not None:
        b_rate = baseline["burst"]["creations_per_second"]
        b_cpu = baseline["cpu_per_creation"]["burst"]
        rate_ratio = suite["burst"]["creations_per_second"] / b_rate if b_rate else None
        cpu_ratio = suite["cpu_per_creation"]["burst"] / b_cpu if b_cpu else None
        check("burst creations/s >= 1.0x the baseline's (ratio)", rate_ratio, 1.0, False)
        check("CPU-s per creation <= the baseline's (ratio)", cpu_ratio, 1.0, True)
    else:
        out.append(("burst creations/s >= 1.0x the baseline's", "no baseline", "-"))
        out.append(("CPU-s per creation <= the baseline's", "no baseline", "-"))
    check(
        "sequential submit -> draft p50 <= floors' sum + 50 ms (ms above)",
        suite.get("sequential_draft_p50_above_floor_ms"),
        50,
        True,
        0,
    )
    check(
        "sequential submit -> draft p99 <= floors' sum + 100 ms (ms above)",
        suite.get("sequential_draft_p99_above_floor_ms"),
        100,
        True,
        0,
    )
    counts = suite["per_creation"]
    check("Firestore writes per creation <= 6", counts["firestore_writes"], 6, True)
    check("Firestore documents read per creation <= 4", counts["firestore_reads"], 4, True)
    check("Pub/Sub publishes per creation <= 2", counts["pubsub_publishes"], 2, True)
    # The sweep runs on a clock, not per creation: its ticks are in the counts above, not here.
    by_creation = counts["invocations_total"] - (counts.get("invocations") or {}).get("sweep", 0)
    check("function invocations per creation <= 3 (not the sweep clock's)", by_creation, 3, True)
    return out


def floor_rows(floors: Mapping[str, Any]) -> list[tuple[str, str]]:
    def p(key: str) -> str:
        s = floors.get(key) or {}
        return f"{_num(s.get('p50'), 1)} / {_num(s.get('p90'), 1)} / {_num(s.get('p99'), 1)} ms"

    return [
        ("publish -> push to a bare handler, p50 / p90 / p99", p("push_ms")),
        ("Firestore write -> narrow listener, p50 / p90 / p99", p("listener_ms")),
        ("one commit (3 writes) + publish, alone, p50 / p90 / p99", p("commit_publish_ms")),
        (
            "commit + publish loop from the burst's thread count",
            f"{_num(floors.get('commit_publish_per_second'))} rounds/s",
        ),
        (
            "sum of the hops' p50 floors (commit + publish, push, write -> listener)",
            f"{_num(floors.get('sum_p50_ms'))} ms",
        ),
    ]


def cold_rows(
    cold: Mapping[str, Mapping[str, Mapping[str, float | None]]],
) -> list[tuple[str, str, str, str]]:
    out = []
    for stack, modules in cold.items():
        for module, seconds in modules.items():
            main, libraries = seconds.get("main"), seconds.get("libraries")
            own = None if main is None or libraries is None else main - libraries
            out.append(
                (
                    f"{stack} {module}",
                    _num(None if main is None else main * 1000, 0),
                    _num(None if libraries is None else libraries * 1000, 0),
                    _num(None if own is None else own * 1000, 0),
                )
            )
    return out


def _table(header: Sequence[str], body: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(r[i])) for r in [header, *body]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            str(c).ljust(w) if i == 0 else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return [line(header), "  ".join("-" * w for w in widths), *(line(r) for r in body)]


def _markdown(header: Sequence[str], body: Sequence[Sequence[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
        *("| " + " | ".join(str(c) for c in row) + " |" for row in body),
    ]


def _sections(
    result: Mapping[str, Any], table: Callable[[Sequence[str], Sequence[Sequence[str]]], list[str]]
) -> list[str]:
    names = list(result["stacks"])
    if len(names) > 1:
        main_rows = [[label, *cells, ratio] for label, cells, ratio in rows(result)]
        lines = table(["", *names, f"{names[0]} / {names[1]}"], main_rows)
    else:
        lines = table(["", *names], [[label, *cells] for label, cells, _ in rows(result)])
    targets = target_rows(result)
    if targets:
        lines += ["", *table(["issue 11 target (suite)", "measured", ""], targets)]
    lines += [
        "",
        *table(
            ["floor of a hop (same emulators, same run)", "measured"], floor_rows(result["floors"])
        ),
    ]
    if result.get("cold_start"):
        lines += [
            "",
            *table(
                [
                    "cold start: import in a fresh interpreter, best of runs",
                    "main ms",
                    "libraries ms",
                    "own ms",
                ],
                cold_rows(result["cold_start"]),
            ),
        ]
    return lines


def header_lines(result: Mapping[str, Any]) -> list[str]:
    m, v, o = result["machine"], result["versions"], result["options"]
    libs = ", ".join(f"{k} {val}" for k, val in v.items() if val and k != "python")
    skipped = "; ".join(
        f"{k}: {why.splitlines()[0]}"
        for k, why in {**result.get("skipped", {}), **result.get("failed", {})}.items()
    )
    return [
        f"Run {result['date']} on {m['cpu']}, {m['cores']} cores, {m['ram_gb']} GB RAM; "
        "load average "
        f"{' '.join(map(str, m['load_average']))} before, "
        f"{' '.join(map(str, result.get('load_average_after', [])))} after.",
        f"Python {v['python']}; {libs}.",
        f"Sizes: {o['sequential']} sequential, burst {o['users']} users x {o['per_user']}; "
        f"OFFLINE_IMAGE_LONG_SIDE_PX={o['image_px']}; {o['warm_up']} warm-up creations per stack "
        "not measured." + (f" Not run: {skipped}." if skipped else ""),
    ]


def text_report(result: Mapping[str, Any]) -> str:
    return "\n".join([*header_lines(result), "", *_sections(result, _table), ""])


# How to read the tables, whatever the run.
READING_NOTES = (
    "The floors' sum is the suite's hops only (commit + publish, push, write -> listener); "
    "the baseline's row is shown against the same sum for scale.",
    "Cold start: `own` = `main` - `libraries` (every module of the function's "
    "requirements.txt). It is negative when `main` imports fewer of them at start-up than the "
    "list (generate, for one, imports its image, video and model libraries only when a job "
    "needs them), or within noise.",
)


def markdown_report(result: Mapping[str, Any]) -> str:
    notes = [*result.get("notes", []), *READING_NOTES]
    return "\n".join(
        [
            *header_lines(result),
            "",
            *_sections(result, _markdown),
            "",
            *(f"- {note}" for note in notes),
            *cost_lines(result),
        ]
    )


def cost_lines(result: Mapping[str, Any]) -> list[str]:
    """The cost model, priced from this run's counts (when both stacks ran)."""
    stacks = result.get("stacks") or {}
    if "suite" not in stacks or "baseline" not in stacks:
        return ["", "(No cost model: it needs both stacks measured in one run.)"]
    # Imported here: the report renders without it when a run has no baseline.
    from benchmarks.cost import per_creation_of_run, render_cost_section

    # Every creation of the run is a first attempt's image draft, whose status event refund's
    # production subscription filters out (terraform/functions.tf): the emulator does not
    # apply filters, so locally refund is woken for each, and returns at once.
    suite = per_creation_of_run(stacks["suite"], filtered_out={"refund"})
    section = render_cost_section(suite, per_creation_of_run(stacks["baseline"]))
    note = (
        "Priced as deployed: refund's invocations here (one per draft) are left out, because "
        "its production subscription filters out a first attempt's image draft "
        "(`NEEDS_A_LOOK_FILTER`); the emulator keeps filters but does not apply them."
    )
    return ["", section.rstrip("\n"), "", note]


def write_markdown(path: Path, generated: str) -> None:
    """Put `generated` between the markers of `path`, keeping everything else; a missing file
    is created from TEMPLATE, a file without markers gets them at its end."""
    text = path.read_text() if path.exists() else TEMPLATE
    if BEGIN not in text or END not in text or text.index(BEGIN) > text.index(END):
        text = text.rstrip("\n") + f"\n\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{head}{BEGIN}\n{generated.strip()}\n{END}{tail}")


def write_json(path: Path, result: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, sort_keys=False, default=str) + "\n")
