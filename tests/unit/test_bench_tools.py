"""The benchmark's pure parts: the counting hook's patches and files, adding counts up, the
percentiles, the Markdown markers, and which libraries a function's cold start is weighed
against. The harness itself runs in tests/integration/test_bench_smoke.py."""

from __future__ import annotations

import json
import types
from pathlib import Path
from typing import Any

import pytest

from benchmarks.counting import sitecustomize as hook
from benchmarks.counting.reader import HOOK_DIR, ProcessCounts, delta, hook_env, read_counts
from benchmarks.harness.coldstart import requirement_modules
from benchmarks.harness.report import BEGIN, END, TEMPLATE, write_markdown
from benchmarks.harness.stats import percentile, summarize


@pytest.fixture
def counter(tmp_path: Path) -> hook.Counter:
    return hook.Counter(str(tmp_path))


def test_the_role_is_the_functions_framework_target_else_bench_role(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert hook.role(["/venv/bin/functions-framework", "--target=generate", "--port=1"]) == (
        "generate"
    )
    assert hook.role(["functions-framework", "--target", "submit"]) == "submit"
    monkeypatch.setenv("BENCH_ROLE", "worker")
    assert hook.role(["/venv/bin/celery", "-A", "app", "worker"]) == "worker"
    monkeypatch.delenv("BENCH_ROLE")
    assert hook.role(["/venv/bin/celery", "-A", "app"]) == "celery"
    assert hook.role(["/venv/lib/site-packages/gunicorn/__main__.py", "app:app"]) == "gunicorn"


def test_request_paths_lose_their_ids() -> None:
    assert hook.request_path("/v1/creations/abc123") == "/v1/creations"
    assert hook.request_path("/projects/p/topics/creations-generate") == "/projects/*"
    assert hook.request_path("/") == "/"


def test_counts_are_flushed_to_a_file_per_process_and_restart_from_zero_after_a_fork(
    counter: hook.Counter, tmp_path: Path
) -> None:
    counter.add("firestore.commits")
    counter.add("firestore.writes", 3)
    counter.flush()
    record = json.loads((tmp_path / f"{counter.pid}.json").read_text())
    assert record["counts"] == {"firestore.commits": 1, "firestore.writes": 3}
    counter.after_fork_in_child()
    assert counter.counts == {}
    counter.add("firestore.commits")
    counter.flush()
    assert read_counts(tmp_path)[counter.pid].counts == {"firestore.commits": 1}


class _FakeFirestore:
    def batch_get_documents(self, request: Any = None, **_kwargs: Any) -> list[str]:
        return ["a", "b"]

    def get_document(self, request: Any = None, **_kwargs: Any) -> str:
        return "doc"

    def run_query(self, request: Any = None, **_kwargs: Any) -> list[Any]:
        found = types.SimpleNamespace(document=types.SimpleNamespace(name="creations/x"))
        empty = types.SimpleNamespace(document=types.SimpleNamespace(name=""))
        return [found, found, empty]

    def run_aggregation_query(self, request: Any = None, **_kwargs: Any) -> list[str]:
        return ["count"]

    def commit(self, request: Any = None, **_kwargs: Any) -> str:
        return "committed"

    def begin_transaction(self, request: Any = None, **_kwargs: Any) -> str:
        return "tx"

    def rollback(self, request: Any = None, **_kwargs: Any) -> None:
        return None


def test_firestore_calls_are_counted_as_billed(counter: hook.Counter) -> None:
    module = types.ModuleType("fake_gapic")
    module.FirestoreClient = type("FirestoreClient", (_FakeFirestore,), {})  # type: ignore[attr-defined]
    hook.patch_firestore(module, counter)
    client = module.FirestoreClient()
    assert client.batch_get_documents(request={"documents": ["a", "b", "c"]}) == ["a", "b"]
    assert client.commit(request={"writes": [1, 2, 3]}) == "committed"
    assert len(list(client.run_query(request={}))) == 3
    assert list(client.run_query(request={})) != []
    client.get_document(request={})
    assert client.run_aggregation_query(request={}) == ["count"]
    assert counter.counts == {
        "firestore.batch_gets": 1,
        # 3 asked + 2 + 2 returned by the queries + 1 get + 1 count.
        "firestore.reads": 9,
        "firestore.aggregations": 1,
        "firestore.commits": 1,
        "firestore.writes": 3,
        "firestore.queries": 2,
        "firestore.query_documents": 4,
    }


def test_an_empty_query_costs_one_read(counter: hook.Counter) -> None:
    module = types.ModuleType("fake_gapic")

    class Client(_FakeFirestore):
        def run_query(self, request: Any = None, **_kwargs: Any) -> list[Any]:
            return []

    module.FirestoreClient = Client  # type: ignore[attr-defined]
    hook.patch_firestore(module, counter)
    assert list(module.FirestoreClient().run_query(request={})) == []
    assert counter.counts["firestore.reads"] == 1


def test_publishes_are_counted_by_topic(counter: hook.Counter) -> None:
    module = types.ModuleType("fake_pubsub")

    class PublisherClient:
        def publish(self, request: Any = None, **kwargs: Any) -> str:
            return "ids"

    module.PublisherClient = PublisherClient  # type: ignore[attr-defined]
    hook.patch_pubsub(module, counter)
    client = module.PublisherClient()
    assert client.publish(topic="projects/p/topics/jobs", messages=[1, 2]) == "ids"
    assert counter.counts == {
        "pubsub.publish_requests": 1,
        "pubsub.messages": 2,
        "pubsub.topic.jobs": 2,
    }


def test_delta_is_by_role_and_a_new_process_counts_from_zero() -> None:
    before = {1: ProcessCounts(1, "submit", {"firestore.writes": 5})}
    after = {
        1: ProcessCounts(1, "submit", {"firestore.writes": 8, "http.requests": 1}),
        2: ProcessCounts(2, "generate", {"firestore.writes": 2}),
        3: ProcessCounts(3, "generate", {"firestore.writes": 1}),
    }
    by_role = delta(before, after)
    assert by_role["submit"] == {"firestore.writes": 3, "http.requests": 1}
    assert by_role["generate"] == {"firestore.writes": 3}


def test_hook_env_puts_the_hook_first_and_names_the_directory(tmp_path: Path) -> None:
    env = hook_env({"PYTHONPATH": "/repo"}, tmp_path)
    assert env["PYTHONPATH"].split(":") == [str(HOOK_DIR), "/repo"]
    assert env["BENCH_COUNTS_DIR"] == str(tmp_path)
    assert (HOOK_DIR / "sitecustomize.py").is_file()


def test_percentiles_are_values_that_were_seen() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile([3.0], 99) == 3.0
    summary = summarize([0.1, 0.2, 0.3])
    assert summary["n"] == 3
    assert summary["p50"] == pytest.approx(200.0)


def test_the_markdown_keeps_everything_outside_its_markers(tmp_path: Path) -> None:
    page = tmp_path / "benchmarks.md"
    write_markdown(page, "first")
    assert page.read_text().startswith(TEMPLATE.split(BEGIN)[0])
    page.write_text(page.read_text().replace(END, f"{END}\n\n## Notes\n\nmine"))
    write_markdown(page, "second")
    text = page.read_text()
    assert f"{BEGIN}\nsecond\n{END}" in text
    assert "first" not in text
    assert "## Notes\n\nmine" in text

    bare = tmp_path / "bare.md"
    bare.write_text("# Mine\n")
    write_markdown(bare, "numbers")
    assert bare.read_text() == f"# Mine\n\n{BEGIN}\nnumbers\n{END}\n"


def test_cold_starts_weigh_a_function_against_the_modules_of_its_requirements(
    tmp_path: Path,
) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(
        "# pinned\nfunctions-framework==3.10.2\ngoogle-cloud-firestore==2.34.1\nPillow==13.0.0\n"
    )
    assert requirement_modules(requirements) == [
        "functions_framework",
        "google.cloud.firestore",
        "PIL.Image",
    ]
