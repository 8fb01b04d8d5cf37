"""Every function can run as several gunicorn worker processes (`tools.stack.chain.CONCURRENCY`).

gunicorn loads the function in its master and forks the workers from it. A gRPC channel made
before the fork does not survive it (its threads stay behind in the master), so loading a
function must start no thread at all: the clients are built on the first request, in the
worker (`shared.core.runtime.per_process`). gRPC starts its threads with the first channel, so
a thread count of one after loading says no channel was made.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tools.stack.chain import FUNCTIONS
from tools.stack.processes import REPO_ROOT, python_child_env

LOAD_AND_COUNT = """
import os, sys
import functions_framework
functions_framework.create_app(sys.argv[1], sys.argv[2])
print(len(os.listdir("/proc/self/task")))
"""


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads in /proc")
@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_loading_a_function_starts_no_thread(name: str) -> None:
    target, source = FUNCTIONS[name]
    env = python_child_env(
        {
            "PATH": os.environ.get("PATH", ""),
            "GCP_PROJECT": "demo-fork",
            "GOOGLE_CLOUD_PROJECT": "demo-fork",
            # Nothing listens there: loading must not need them.
            "FIRESTORE_EMULATOR_HOST": "127.0.0.1:9",
            "PUBSUB_EMULATOR_HOST": "127.0.0.1:9",
            "STORAGE_EMULATOR_HOST": "http://127.0.0.1:9",
        }
    )
    done = subprocess.run(
        [sys.executable, "-c", LOAD_AND_COUNT, target, str(REPO_ROOT / source)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1", f"{name} started threads while loading"
