"""The stacks under test, behind one small interface: start, stop, where to submit, which
processes are theirs.

- `SuiteUnderTest`: the suite's local stack as `make dev` builds it (`tools.stack.chain`
  `LocalStack` with `default_functions` and the default wiring), on free ports. Which
  processes it runs (one per function or several) and whether it has a trigger router is
  read from the `LocalStack` at run time, not assumed.
- `BaselineUnderTest`: the Celery + Redis baseline (`benchmarks.baseline.stack.BaselineStack`),
  when it is there.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from shared.core.settings import Settings
from tools.stack.chain import FUNCTIONS, Knobs, LocalStack, default_functions
from tools.stack.processes import free_port

Progress = Callable[[str], None]


class StackUnderTest(Protocol):
    name: str
    # The counting hook's role of a process (functions-framework target, program name) ->
    # the role `pids()` gives it, so counts and CPU are reported under one name.
    count_roles: Mapping[str, str]

    @property
    def submit_url(self) -> str: ...

    def start(self, progress: Progress) -> None: ...

    def stop(self) -> None: ...

    def pids(self) -> dict[str, list[int]]:
        """Its own processes by role (children are found from these)."""
        ...

    def in_process_port(self) -> int | None:
        """A server of this stack that runs as threads of the harness (its CPU is measured
        per thread), or None."""
        ...


class SuiteUnderTest:
    name = "suite"
    count_roles: Mapping[str, str] = {}  # the targets are the function names already

    def __init__(
        self, settings: Settings, env: Mapping[str, str], log_dir: Path, router_port: int
    ) -> None:
        functions = default_functions({name: free_port() for name in FUNCTIONS})
        self.local = LocalStack(
            settings,
            functions,
            router_port=router_port,
            log_dir=log_dir,
            env=env,
            # As `make dev` runs (the sweep clock included): what a new user measures.
            knobs=Knobs.from_env(os.environ),
        )

    @property
    def submit_url(self) -> str:
        return self.local.url("submit")

    def start(self, progress: Progress) -> None:
        self.local.start(progress=progress)

    def stop(self) -> None:
        self.local.stop()

    def pids(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for name, process in self.local.processes.items():
            if process.pid is not None:
                out.setdefault(name, []).append(process.pid)
        return out

    def in_process_port(self) -> int | None:
        return self.local.router_port if self.local.wiring.triggers else None


def baseline_class() -> tuple[Any | None, str]:
    """(BaselineStack, "") when the baseline is importable, else (None, why not)."""
    try:
        module = importlib.import_module("benchmarks.baseline.stack")
    except ImportError as exc:
        return None, f"the Celery + Redis baseline is not importable ({exc})"
    found = getattr(module, "BaselineStack", None)
    if found is None:
        return None, "benchmarks.baseline.stack has no BaselineStack"
    return found, ""


class BaselineUnderTest:
    name = "baseline"
    count_roles: Mapping[str, str] = {"gunicorn": "api", "celery": "worker"}

    def __init__(self, env: Mapping[str, str], log_dir: Path) -> None:
        stack_class, why = baseline_class()
        if stack_class is None:
            raise RuntimeError(why)
        self.stack = stack_class(
            env=dict(env),
            log_dir=log_dir,
            api_port=free_port(),
            redis_port=free_port(),
            worker_processes=2,
        )

    @property
    def submit_url(self) -> str:
        return str(self.stack.submit_url)

    def start(self, progress: Progress) -> None:
        self.stack.start(progress=progress)

    def stop(self) -> None:
        self.stack.stop()

    def pids(self) -> dict[str, list[int]]:
        return {str(role): [int(p) for p in pids] for role, pids in self.stack.pids().items()}

    def in_process_port(self) -> int | None:
        return None
