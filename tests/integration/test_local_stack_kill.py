"""A generate process killed mid-job, in the running local stack: the work is redelivered
and completed. (Its own stack and module: only one stack can own the trigger router port.)"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from tests.support.stack import start_stack
from tools.stack.devauth import DevSigner
from tools.stack.emulators import EmulatorSet
from tools.stack.processes import ManagedProcess, port_is_free
from tools.stack.waiting import wait_until


def test_generate_killed_mid_job_is_redelivered_and_completed(
    emulators: EmulatorSet, base_env: dict[str, str], signer: DevSigner, tmp_path: Path
) -> None:
    # Slow jobs (3 s of simulated latency) and a short lease, so the kill lands mid-job and
    # the recovery (lease expiry, then the sweeper's re-enqueue) happens within the test.
    running = start_stack(
        emulators,
        base_env,
        signer,
        tmp_path,
        {
            "OFFLINE_LATENCY_SECONDS": "3",
            "LEASE_SECONDS": "4",
            "SWEEP_PENDING_AFTER_SECONDS": "2",
        },
    )
    replacement: ManagedProcess | None = None
    try:
        running.ledger.grant("eve", 5)
        created = running.submit("eve", {"type": "image", "prompt": "a slow kite"})
        running.wait(created["id"], lambda d: d.get("status") == "processing", "processing")
        victim = running.stack.processes["generate"]
        assert victim.pid is not None
        os.killpg(victim.pid, signal.SIGKILL)  # no graceful shutdown: the job dies with it
        # The kernel frees the port once the process has died.
        wait_until(lambda: port_is_free(victim.port), 30, "the killed generate frees its port")
        replacement = ManagedProcess(
            "generate (restarted)",
            victim.argv,
            port=victim.port,
            log_path=tmp_path / "generate-restarted.log",
            env=victim.env,
            cwd=victim.cwd,
        )
        replacement.start(timeout=60)
        done = running.wait(
            created["id"], lambda d: d.get("status") == "draft", "draft", 90, watch_processes=False
        )
        assert done["attempts"] >= 2
        assert len(done["media"]) == 1
        assert running.ledger.balance("eve") == 5 - created["cost"]
        running.assert_ledgers_balance()
    finally:
        if replacement is not None:
            replacement.stop()
        running.stack.stop()
