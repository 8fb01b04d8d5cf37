"""Counts what a process asks of Google Cloud, at the client library, for `make bench`.

Python imports `sitecustomize` at start-up from the first folder on `sys.path` that has one,
so putting this folder first on `PYTHONPATH` loads it into every Python child of a stack. When
`BENCH_COUNTS_DIR` is unset it does nothing else (a plain `make dev` or a cold-start timing is
untouched); when set, it patches, as each library is imported (nothing is imported early, so
start-up stays as it was):

- `google.cloud.firestore_v1` GAPIC `FirestoreClient` (every Firestore call of the high-level
  client goes through it): `batch_get_documents` (documents asked for: Firestore bills a read
  per document asked, found or not), `get_document`, `run_query` (documents returned; a
  query that returns none is billed one read), `run_aggregation_query` (a count: one read),
  `commit` (commits, writes), `begin_transaction`,
  `rollback`;
- `google.pubsub_v1` GAPIC `PublisherClient.publish` (the high-level publisher's batches end
  there): messages, requests, messages by topic;
- `flask.Flask.wsgi_app`: HTTP requests served, by method and path (ids cut off);
- `celery.signals.task_prerun`: Celery tasks run, by task name.

Counts live in `BENCH_COUNTS_DIR/<pid>.json` (`{"pid", "role", "argv", "counts"}`), rewritten
by a daemon thread every 0.2 s when they changed, and at exit. gunicorn (functions-framework
with several workers) and Celery's prefork pool fork after import: the child starts from zero
with a file, lock and thread of its own (`os.register_at_fork`), the parent's counts stay the
parent's. The role is the functions-framework `--target` when there is one, else
`BENCH_ROLE`, else the program's name (the package's, for `python -m celery`).

Only the standard library is imported here: this runs before anything else in the process.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.abc
import importlib.machinery
import json
import os
import sys
import threading
import types
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

COUNTS_DIR_VARIABLE = "BENCH_COUNTS_DIR"
ROLE_VARIABLE = "BENCH_ROLE"
FLUSH_INTERVAL_SECONDS = 0.2

FIRESTORE_GAPIC = "google.cloud.firestore_v1.services.firestore.client"
PUBSUB_GAPIC = "google.pubsub_v1.services.publisher.client"
FLASK_APP = "flask.app"
CELERY_SIGNALS = "celery.signals"


# --- the counters -----------------------------------------------------------------------------


class Counter:
    """This process's counts: flat names (`firestore.reads`, `http.POST /v1/creations`) -> int."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self._reset()

    def _reset(self) -> None:
        self.pid = os.getpid()
        self.path = os.path.join(self.directory, f"{self.pid}.json")  # noqa: PTH118 - stdlib only
        self.counts: dict[str, int] = {}
        self._lock = threading.Lock()
        self._version = 0
        self._written = -1
        self._stop = threading.Event()
        thread = threading.Thread(target=self._flush_loop, name="bench-counts", daemon=True)
        thread.start()

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self.counts[name] = self.counts.get(name, 0) + amount
            self._version += 1

    def after_fork_in_child(self) -> None:
        # The parent's counts are the parent's (its file says so); the lock may have been held
        # by a thread that does not exist here, and the flush thread did not survive the fork.
        self._reset()

    def flush(self) -> None:
        with self._lock:
            if self._version == self._written:
                return
            version, counts = self._version, dict(self.counts)
        record = {"pid": self.pid, "role": role(sys.argv), "argv": sys.argv[:6], "counts": counts}
        tmp = f"{self.path}.tmp"
        with contextlib.suppress(OSError):
            with open(tmp, "w") as out:  # noqa: PTH123 - stdlib only, no pathlib import cost
                json.dump(record, out)
            os.replace(tmp, self.path)  # noqa: PTH105
            self._written = version

    def _flush_loop(self) -> None:
        while not self._stop.wait(FLUSH_INTERVAL_SECONDS):
            self.flush()


def role(argv: Sequence[str]) -> str:
    """What this process is: the functions-framework target, BENCH_ROLE, or the program."""
    for index, arg in enumerate(argv):
        if arg.startswith("--target="):
            return arg.split("=", 1)[1]
        if arg == "--target" and index + 1 < len(argv):
            return argv[index + 1]
    explicit = os.environ.get(ROLE_VARIABLE, "").strip()
    if explicit:
        return explicit
    program = argv[0] if argv else ""
    if not program:
        return "python"
    head, name = os.path.split(program)
    if name == "__main__.py":  # `python -m celery ...`: the package is the program
        return os.path.basename(head) or "python"  # noqa: PTH119
    return name


def request_path(path: str) -> str:
    """A path with its ids cut off, so counts by path stay few: two segments at most."""
    segments = [s for s in path.split("/") if s][:2]
    if len(segments) == 2 and segments[0] == "projects":
        return "/projects/*"  # a push endpoint: /projects/P/topics/T
    return "/" + "/".join(segments)


# --- the patches ------------------------------------------------------------------------------


def _field(request: Any, kwargs: dict[str, Any], name: str) -> Any:
    if request is None:
        return kwargs.get(name)
    if isinstance(request, dict):
        return request.get(name)
    return getattr(request, name, None)


def _counted_query(counter: Counter, responses: Iterable[Any]) -> Iterator[Any]:
    returned = 0
    try:
        for response in responses:
            if getattr(response, "document", None) is not None and response.document.name:
                returned += 1
            yield response
    finally:
        counter.add("firestore.query_documents", returned)
        counter.add("firestore.reads", max(returned, 1))


def patch_firestore(module: types.ModuleType, counter: Counter) -> None:
    client = module.FirestoreClient

    def wrap(name: str, before: Callable[[Any, dict[str, Any]], None]) -> None:
        original = getattr(client, name)

        def counted(self: Any, request: Any = None, **kwargs: Any) -> Any:
            before(request, kwargs)
            result = original(self, request, **kwargs)
            if name == "run_query":
                return _counted_query(counter, result)
            return result

        counted.__wrapped__ = original  # type: ignore[attr-defined]
        setattr(client, name, counted)

    def batch_get(request: Any, kwargs: dict[str, Any]) -> None:
        asked = len(_field(request, kwargs, "documents") or ())
        counter.add("firestore.batch_gets")
        counter.add("firestore.reads", asked)

    def get_document(_request: Any, _kwargs: dict[str, Any]) -> None:
        counter.add("firestore.reads")

    def run_query(_request: Any, _kwargs: dict[str, Any]) -> None:
        counter.add("firestore.queries")

    def run_aggregation_query(_request: Any, _kwargs: dict[str, Any]) -> None:
        # A count is billed one read per 1000 index entries it passes (ours stop far below).
        counter.add("firestore.aggregations")
        counter.add("firestore.reads")

    def commit(request: Any, kwargs: dict[str, Any]) -> None:
        counter.add("firestore.commits")
        counter.add("firestore.writes", len(_field(request, kwargs, "writes") or ()))

    def begin_transaction(_request: Any, _kwargs: dict[str, Any]) -> None:
        counter.add("firestore.transactions")

    def rollback(_request: Any, _kwargs: dict[str, Any]) -> None:
        counter.add("firestore.rollbacks")

    wrap("batch_get_documents", batch_get)
    wrap("get_document", get_document)
    wrap("run_query", run_query)
    wrap("run_aggregation_query", run_aggregation_query)
    wrap("commit", commit)
    wrap("begin_transaction", begin_transaction)
    wrap("rollback", rollback)


def patch_pubsub(module: types.ModuleType, counter: Counter) -> None:
    client = module.PublisherClient
    original = client.publish

    def publish(self: Any, request: Any = None, **kwargs: Any) -> Any:
        messages = len(_field(request, kwargs, "messages") or ())
        topic = str(_field(request, kwargs, "topic") or "?").rsplit("/", 1)[-1]
        counter.add("pubsub.publish_requests")
        counter.add("pubsub.messages", messages)
        counter.add(f"pubsub.topic.{topic}", messages)
        return original(self, request, **kwargs)

    publish.__wrapped__ = original  # type: ignore[attr-defined]
    client.publish = publish


def patch_flask(module: types.ModuleType, counter: Counter) -> None:
    flask = module.Flask
    original = flask.wsgi_app

    def wsgi_app(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
        method = str(environ.get("REQUEST_METHOD", "?"))
        counter.add("http.requests")
        counter.add(f"http.{method} {request_path(str(environ.get('PATH_INFO', '/')))}")
        return original(self, environ, start_response)

    wsgi_app.__wrapped__ = original  # type: ignore[attr-defined]
    flask.wsgi_app = wsgi_app


def patch_celery(module: types.ModuleType, counter: Counter) -> None:
    def prerun(sender: Any = None, task: Any = None, **_kwargs: Any) -> None:
        name = getattr(task or sender, "name", None) or "?"
        counter.add("celery.tasks")
        counter.add(f"celery.task.{name}")

    # A strong reference: the signal holds receivers weakly by default.
    module.task_prerun.connect(prerun, weak=False)


# --- patching on import -----------------------------------------------------------------------


class _Patched(importlib.abc.Loader):
    """Runs the real loader, then the patch, for one module."""

    def __init__(self, real: importlib.abc.Loader, patch: Callable[[types.ModuleType], None]):
        self._real = real
        self._patch = patch

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return self._real.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        self._real.exec_module(module)
        try:
            self._patch(module)
        except Exception as exc:  # a library changed: say so, never break the process
            print(f"bench counting: could not patch {module.__name__}: {exc!r}", file=sys.stderr)


class PatchOnImport(importlib.abc.MetaPathFinder):
    """A finder that only wraps the loaders of the modules it has patches for."""

    def __init__(self, patches: dict[str, Callable[[types.ModuleType], None]]) -> None:
        self._patches = patches

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        patch = self._patches.get(fullname)
        if patch is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _Patched(spec.loader, patch)
        return spec


def install(directory: str) -> Counter:
    os.makedirs(directory, exist_ok=True)  # noqa: PTH103
    counter = Counter(directory)
    os.register_at_fork(after_in_child=counter.after_fork_in_child)
    atexit.register(counter.flush)
    sys.meta_path.insert(
        0,
        PatchOnImport(
            {
                FIRESTORE_GAPIC: lambda m: patch_firestore(m, counter),
                PUBSUB_GAPIC: lambda m: patch_pubsub(m, counter),
                FLASK_APP: lambda m: patch_flask(m, counter),
                CELERY_SIGNALS: lambda m: patch_celery(m, counter),
            }
        ),
    )
    return counter


_directory = os.environ.get(COUNTS_DIR_VARIABLE, "").strip()
if _directory and __name__ == "sitecustomize":
    COUNTER = install(_directory)
