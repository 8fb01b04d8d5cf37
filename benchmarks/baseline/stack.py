"""`BaselineStack`: Redis, the Celery worker and the gunicorn-served API, started and stopped
as one, each a `tools.stack.processes.ManagedProcess` (own process group, log file, stop that
takes the whole group down).

    with BaselineStack(env=env, log_dir=logs, api_port=8090, redis_port=6390) as stack:
        requests.post(f"{stack.submit_url}/v1/creations", json=..., headers=...)

`start()` returns once Redis answers PING, the API answers `/healthz` and the worker answers a
Celery control ping (its task consumer is up by then), each polled with a deadline.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import psutil
import redis

from benchmarks.baseline.config import REDIS_URL_VARIABLE
from tools.stack.processes import (
    LOCALHOST,
    REPO_ROOT,
    ManagedProcess,
    StackError,
    answers_200,
    ensure_port_free,
    stop_and_say,
)
from tools.stack.waiting import wait_until

REDIS_SERVER: Final = shutil.which("redis-server") or "/usr/bin/redis-server"
READY_TIMEOUT: Final = 60.0
# functions-framework's default for the suite's functions: one process, cpu x 4 threads.
API_THREADS: Final = (os.cpu_count() or 1) * 4


class _PortlessProcess(ManagedProcess):
    """A managed process that listens on no port of its own (the Celery worker connects out
    to Redis): no port to check before launch; readiness is checked by the caller."""

    def check_port(self) -> None:
        return None


def baseline_child_env(env: Mapping[str, str], redis_url: str) -> dict[str, str]:
    """`env` for a Python child: the caller's PYTHONPATH first as given (the benchmark puts its
    counting hook there), then the repository root so `benchmarks.baseline` imports."""
    out = dict(env)
    paths = [p for p in out.get("PYTHONPATH", "").split(os.pathsep) if p]
    if str(REPO_ROOT) not in paths:
        paths.append(str(REPO_ROOT))
    out["PYTHONPATH"] = os.pathsep.join(paths)
    out["PYTHONUNBUFFERED"] = "1"
    out[REDIS_URL_VARIABLE] = redis_url
    return out


class BaselineStack:
    """The Celery + Redis + Flask baseline on the emulators `env` points at."""

    def __init__(
        self,
        *,
        env: Mapping[str, str],
        log_dir: Path,
        api_port: int,
        redis_port: int,
        worker_processes: int = 2,
    ) -> None:
        self.submit_url = f"http://{LOCALHOST}:{api_port}"
        self.redis_url = f"redis://{LOCALHOST}:{redis_port}/0"
        self.worker_name = f"baseline-{redis_port}@{LOCALHOST}"
        child_env = baseline_child_env(env, self.redis_url)
        self._redis_port = redis_port
        self._redis = ManagedProcess(
            "redis (baseline broker)",
            [
                REDIS_SERVER,
                *("--port", str(redis_port), "--bind", LOCALHOST),
                *("--save", "", "--appendonly", "no"),
            ],
            port=redis_port,
            log_path=log_dir / "baseline-redis.log",
            env=child_env,
        )
        self._worker = _PortlessProcess(
            "celery worker (baseline)",
            [
                sys.executable,
                *("-m", "celery", "-A", "benchmarks.baseline.tasks", "worker"),
                *("--pool", "prefork", "--concurrency", str(worker_processes)),
                *("--prefetch-multiplier", "1", "-n", self.worker_name),
                # Cluster chatter a lone worker does not need; the control ping stays on.
                *("--without-gossip", "--without-mingle", "--without-heartbeat"),
                *("--loglevel", "WARNING"),
            ],
            port=redis_port,
            log_path=log_dir / "baseline-worker.log",
            env=child_env,
            cwd=REPO_ROOT,
        )
        self._api = ManagedProcess(
            "baseline API (gunicorn)",
            [
                sys.executable,
                *("-m", "gunicorn", "--bind", f"{LOCALHOST}:{api_port}"),
                *("--workers", "1", "--worker-class", "gthread", "--threads", str(API_THREADS)),
                *("--timeout", "0", "--log-level", "error"),
                "benchmarks.baseline.api:app",
            ],
            port=api_port,
            log_path=log_dir / "baseline-api.log",
            env=child_env,
            cwd=REPO_ROOT,
            ready_path="/healthz",
            ready_check=answers_200,
        )

    @property
    def _processes(self) -> dict[str, ManagedProcess]:
        return {"api": self._api, "worker": self._worker, "redis": self._redis}

    def start(self, progress: Callable[[str], None] | None = None) -> None:
        say = progress or (lambda _message: None)
        started = time.monotonic()
        ensure_port_free(self._api.port, self._api.name)
        try:
            self._redis.launch()
            wait_until(self._redis_answers, READY_TIMEOUT, "redis answers PING")
            self._worker.launch()
            self._api.launch()
            self._api.wait_ready(READY_TIMEOUT)
            wait_until(self._worker_answers, READY_TIMEOUT, f"{self.worker_name} answers ping")
        except BaseException:
            self.stop()
            raise
        say(f"baseline ready in {time.monotonic() - started:.1f} s: {self.submit_url}")

    def _redis_answers(self) -> bool:
        self._raise_if_exited(self._redis)
        client = redis.Redis(host=LOCALHOST, port=self._redis_port, socket_timeout=1)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def _worker_answers(self) -> bool:
        self._raise_if_exited(self._worker)
        from celery import Celery  # type: ignore[import-untyped]  # only to ask the worker

        probe = Celery("baseline-probe", broker=self.redis_url)
        try:
            replies: list[dict[str, Any]] = probe.control.ping(
                destination=[self.worker_name], timeout=0.5
            )
        except Exception:
            return False
        finally:
            probe.close()
        return any(self.worker_name in reply for reply in replies)

    @staticmethod
    def _raise_if_exited(process: ManagedProcess) -> None:
        code = process.poll()
        if code is not None:
            raise StackError(
                f"{process.name} exited with code {code} before it was ready\n"
                + process.describe_log()
            )

    def stop(self) -> None:
        """Stop the API, then the worker (a warm shutdown finishes the jobs it holds), then
        Redis. Idempotent."""
        for process in (self._api, self._worker, self._redis):
            stop_and_say(process, lambda _message: None)

    def pids(self) -> dict[str, list[int]]:
        """The live processes of each role, children included (gunicorn's worker, Celery's
        pool)."""
        found: dict[str, list[int]] = {}
        for role, process in self._processes.items():
            pids: list[int] = []
            if process.pid is not None and process.poll() is None:
                try:
                    leader = psutil.Process(process.pid)
                    pids = [leader.pid, *(c.pid for c in leader.children(recursive=True))]
                except psutil.NoSuchProcess:
                    pids = []
            found[role] = pids
        return found

    def __enter__(self) -> BaselineStack:
        if not self._redis.started:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    """Run the baseline against emulators that are already up (`eval "$(make -s env)"` after
    `make dev`), until Ctrl-C. Tokens from `make -s token` pass: unless AUTH_CERTS_URL is set,
    the dev stack's signer is trusted."""
    import argparse
    import signal
    import threading

    from tools.stack.dev import AUTH_DIR
    from tools.stack.devauth import certs_url, load_or_create_signer

    parser = argparse.ArgumentParser(prog="python -m benchmarks.baseline.stack")
    parser.add_argument("--api-port", type=int, default=8095)
    parser.add_argument("--redis-port", type=int, default=6395)
    parser.add_argument("--worker-processes", type=int, default=2)
    parser.add_argument("--log-dir", type=Path, default=REPO_ROOT / ".dev" / "logs" / "baseline")
    args = parser.parse_args(argv)
    env = dict(os.environ)
    if not env.get("FIRESTORE_EMULATOR_HOST") or not env.get("STORAGE_EMULATOR_HOST"):
        print('set FIRESTORE_EMULATOR_HOST and STORAGE_EMULATOR_HOST (eval "$(make -s env)")')
        return 2
    if not env.get("AUTH_CERTS_URL"):
        load_or_create_signer(AUTH_DIR)
        env["AUTH_CERTS_URL"] = certs_url(AUTH_DIR)
    stopped = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    with BaselineStack(
        env=env,
        log_dir=args.log_dir,
        api_port=args.api_port,
        redis_port=args.redis_port,
        worker_processes=args.worker_processes,
    ) as stack:
        print(f"baseline up: POST {stack.submit_url}/v1/creations (logs in {args.log_dir})")
        stopped.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
