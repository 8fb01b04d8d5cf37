"""One creation, one trace: a creation is followed through the running stack's log files by its
trace id alone, from the submit that made it through generate to refund, as Cloud Logging
groups them (`logging.googleapis.com/trace`)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from shared.core import tracing
from tests.support.stack import RunningStack, start_stack
from tools.stack.devauth import DevSigner
from tools.stack.emulators import EmulatorSet
from tools.stack.waiting import wait_until

TRACE_FIELD = "logging.googleapis.com/trace"
LOG_WAIT_SECONDS = 30.0


@pytest.fixture(scope="module")
def traced(
    emulators: EmulatorSet,
    base_env: dict[str, str],
    signer: DevSigner,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[RunningStack, Path]]:
    log_dir = tmp_path_factory.mktemp("trace")
    # DEBUG: each event's own line too (a refund with nothing to do says nothing at INFO).
    # More attempts than deliveries: a job that keeps failing is dead-lettered before its
    # claims run out.
    env = {"LOG_LEVEL": "DEBUG", "MAX_GENERATION_ATTEMPTS": "10"}
    running = start_stack(emulators, base_env, signer, log_dir, env)
    try:
        yield running, log_dir
    finally:
        running.stack.stop()


def post(chain: RunningStack, user: str, body: dict[str, Any], **headers: str) -> Any:
    response = requests.post(
        f"{chain.stack.url('submit')}/v1/creations",
        json=body,
        headers={**chain.headers(user), **headers},
        timeout=30,
    )
    assert response.status_code == 202, response.text
    return response


def lines_of(log_dir: Path, function: str, trace_id: str, project: str) -> list[dict[str, Any]]:
    """The JSON lines of `function`'s log files (one or several processes) in `trace_id`."""
    wanted = f"projects/{project}/traces/{trace_id}"
    found = []
    for path in sorted(log_dir.glob(f"{function}*.log")):
        for raw in path.read_text(errors="replace").splitlines():
            if not raw.startswith("{"):
                continue  # functions-framework's and gunicorn's own lines
            line = json.loads(raw)
            if line.get(TRACE_FIELD) == wanted:
                found.append({**line, "_file": path.name})
    return found


def wait_for_lines(
    log_dir: Path, function: str, trace_id: str, project: str, what: str, match: Any
) -> list[dict[str, Any]]:
    def matching() -> list[dict[str, Any]]:
        return [line for line in lines_of(log_dir, function, trace_id, project) if match(line)]

    try:
        return wait_until(matching, LOG_WAIT_SECONDS, f"{function}: {what} in trace {trace_id}")
    except TimeoutError as exc:
        every = sorted(p.name for p in log_dir.glob("*.log"))
        pytest.fail(f"{exc} (log files: {every})")


def is_access_line(line: dict[str, Any]) -> bool:
    return str(line.get("message", "")).startswith("POST /v1/creations ")


def is_job_line(line: dict[str, Any]) -> bool:
    return str(line.get("message", "")).startswith("job done")


def test_one_creation_is_followed_from_submit_to_refund_by_the_trace_it_was_sent_with(
    traced: tuple[RunningStack, Path],
) -> None:
    chain, log_dir = traced
    project = chain.settings.gcp_project
    trace_id = "5e1f0c2a9b8d4e7f8a6b5c4d3e2f1a0b"
    chain.ledger.grant("tia", 5)
    response = post(
        chain,
        "tia",
        {"type": "image", "prompt": "a lighthouse"},
        traceparent=f"00-{trace_id}-1a2b3c4d5e6f7081-01",
    )
    answered = tracing.parse_traceparent(response.headers["traceparent"])
    assert answered is not None
    assert answered.id == trace_id
    creation = response.json()
    assert creation["trace"] == trace_id
    chain.wait(creation["id"], lambda d: d.get("status") == "draft", "draft")
    assert chain.doc(creation["id"])["trace"] == trace_id

    (access,) = wait_for_lines(
        log_dir, "submit", trace_id, project, "the access line", is_access_line
    )
    assert access["creation_id"] == creation["id"]
    assert access["logging.googleapis.com/spanId"] == "1a2b3c4d5e6f7081"
    accepted = lines_of(log_dir, "submit", trace_id, project)
    assert any(line.get("message") == "creation accepted" for line in accepted)

    (job,) = wait_for_lines(log_dir, "generate", trace_id, project, "the job line", is_job_line)
    assert (job["outcome"], job["creation_id"], job["attempt"]) == ("draft", creation["id"], "1")
    phases = {key for key in job if key.endswith("_ms")}
    assert {"claim_ms", "provider_ms", "upload_ms", "finish_ms", "total_ms"} <= phases
    assert all(job[key] >= 0 for key in phases)
    generate = lines_of(log_dir, "generate", trace_id, project)
    assert {"job done: draft", "event handled"} <= {line.get("message") for line in generate}

    refund = wait_for_lines(
        log_dir, "refund", trace_id, project, "a line", lambda ln: "message" in ln
    )
    assert refund
    # Every line has a time Cloud Logging reads: RFC 3339, UTC, sub-second.
    for line in [*accepted, *generate, *refund]:
        assert dt.datetime.strptime(line["time"], "%Y-%m-%dT%H:%M:%S.%fZ")


def test_a_submit_without_a_trace_starts_one_that_follows_the_creation(
    traced: tuple[RunningStack, Path],
) -> None:
    chain, log_dir = traced
    project = chain.settings.gcp_project
    chain.ledger.grant("uma", 5)
    response = post(chain, "uma", {"type": "image", "prompt": "a harbour"})
    made = tracing.parse_traceparent(response.headers["traceparent"])
    assert made is not None
    creation = response.json()
    assert creation["trace"] == made.id
    chain.wait(creation["id"], lambda d: d.get("status") == "draft", "draft")
    (job,) = wait_for_lines(log_dir, "generate", made.id, project, "the job line", is_job_line)
    assert job["creation_id"] == creation["id"]
    (access,) = wait_for_lines(
        log_dir, "submit", made.id, project, "the access line", is_access_line
    )
    assert access["creation_id"] == creation["id"]


def test_a_failed_creations_refund_is_logged_under_its_trace(
    traced: tuple[RunningStack, Path],
) -> None:
    chain, log_dir = traced
    project = chain.settings.gcp_project
    trace_id = "7d6c5b4a39281706f5e4d3c2b1a09f8e"
    chain.ledger.grant("vic", 5)
    response = post(
        chain,
        "vic",
        {"type": "image", "prompt": "storm [fail:safety]"},
        **{"X-Cloud-Trace-Context": f"{trace_id}/12345;o=1"},
    )
    creation = response.json()
    done = chain.wait(creation["id"], lambda d: bool(d.get("refunded")), "refunded")
    assert (done["status"], done["trace"]) == ("failed", trace_id)
    (job,) = wait_for_lines(log_dir, "generate", trace_id, project, "the job line", is_job_line)
    assert (job["outcome"], job["detail"]) == ("failed", "safety_blocked")
    [refunded, *_] = wait_for_lines(
        log_dir,
        "refund",
        trace_id,
        project,
        "the refund line",
        lambda ln: "refunded" in str(ln.get("message", "")),
    )
    assert refunded["creation_id"] == creation["id"]
    assert chain.ledger.balance("vic") == 5


def test_a_dead_lettered_job_fails_its_creation_under_its_trace(
    traced: tuple[RunningStack, Path],
) -> None:
    chain, log_dir = traced
    project = chain.settings.gcp_project
    trace_id = "0123456789abcdef0123456789abcdef"
    chain.ledger.grant("wes", 5)
    response = post(
        chain,
        "wes",
        {"type": "image", "prompt": "static [fail:transient]"},
        traceparent=f"00-{trace_id}-0123456789abcdef-00",
    )
    creation = response.json()
    done = chain.wait(creation["id"], lambda d: bool(d.get("refunded")), "refunded", 180)
    assert (done["status"], done["error"]["code"]) == ("failed", "delivery_exhausted")
    # Pub/Sub keeps the message's attributes when it dead-letters it, the trace among them.
    [dead, *_] = wait_for_lines(
        log_dir,
        "dead_letter",
        trace_id,
        project,
        "the dead letter line",
        lambda ln: str(ln.get("message", "")).startswith("dead letter"),
    )
    assert dead["creation_id"] == creation["id"]
    retried = [
        line
        for line in lines_of(log_dir, "generate", trace_id, project)
        if is_job_line(line) and line["outcome"] == "retried"
    ]
    assert retried
