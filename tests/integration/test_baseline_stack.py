"""The benchmark's Celery + Redis baseline (benchmarks/baseline/) does the suite's work on the
emulators: three creations reach `draft` with one PNG each, the ledger balances, a short
balance is a 402 and a bad token a 401, and stopping leaves no process behind."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from google.cloud import firestore
from google.cloud.storage import Bucket

from benchmarks.baseline.stack import REDIS_SERVER, BaselineStack
from shared.core.settings import Settings
from shared.money.ledger import Ledger
from tools.stack.processes import free_port, pid_alive
from tools.stack.waiting import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _redis_installed() -> None:
    if shutil.which(REDIS_SERVER) is None:
        reason = f"redis-server is not installed ({REDIS_SERVER}; apt-get install redis-server)"
        if os.environ.get("CI"):
            pytest.fail(reason)  # CI has it: a missing server there is a broken image
        pytest.skip(reason)


def submit(url: str, token: str, body: dict[str, Any]) -> requests.Response:
    return requests.post(
        f"{url}/v1/creations",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def test_the_baseline_makes_drafts_and_keeps_the_ledger(
    base_env: dict[str, str],
    stack: Settings,
    ledger: Ledger,
    token: Callable[[str], str],
    bucket: Bucket,
    db: firestore.Client,
    tmp_path: Path,
) -> None:
    env = {
        **base_env,
        "MEDIA_BUCKET": stack.media_bucket,
        "OFFLINE_IMAGE_LONG_SIDE_PX": "256",
        "LOG_LEVEL": "INFO",
    }
    baseline = BaselineStack(
        env=env, log_dir=tmp_path / "logs", api_port=free_port(), redis_port=free_port()
    )
    ledger.grant("ada", 3)
    with baseline:
        pids = baseline.pids()
        assert len(pids["worker"]) == 3  # the Celery main process and its 2 pool processes
        assert len(pids["api"]) == 2  # gunicorn's arbiter and its one worker
        assert len(pids["redis"]) == 1

        answers = [
            submit(baseline.submit_url, token("ada"), {"type": "image", "prompt": f"p{i}"})
            for i in range(3)
        ]
        assert [a.status_code for a in answers] == [202, 202, 202], [a.text for a in answers]
        bodies = [a.json() for a in answers]
        assert {b["status"] for b in bodies} == {"pending"}
        assert sorted(b["balance"] for b in bodies) == [0, 1, 2]
        ids = [b["id"] for b in bodies]

        short = submit(baseline.submit_url, token("ada"), {"type": "image", "prompt": "one more"})
        assert short.status_code == 402, short.text
        forged = submit(baseline.submit_url, token("ada") + "x", {"type": "image", "prompt": "x"})
        assert forged.status_code == 401, forged.text
        bad = submit(baseline.submit_url, token("ada"), {"type": "video", "prompt": "x"})
        assert bad.status_code == 400, bad.text

        def statuses() -> dict[str, Any]:
            return {i: (db.document(f"creations/{i}").get().to_dict() or {}) for i in ids}

        done = wait_for(
            statuses,
            lambda seen: all(c.get("status") == "draft" for c in seen.values()),
            60,
            "three drafts",
        )
        for creation_id, creation in done.items():
            assert creation["progress"] == 100
            assert creation["attempts"] == 1
            assert creation["lease_owner"] is None
            (item,) = creation["media"]
            assert item["uri"] == f"gs://{bucket.name}/media/ada/{creation_id}/0.png"
            assert (item["content_type"], item["width"], item["height"]) == ("image/png", 256, 256)
            (blob,) = list(bucket.list_blobs(prefix=f"media/ada/{creation_id}/"))
            assert blob.size == item["bytes"]
            assert blob.download_as_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

        assert ledger.balance("ada") == 0
        kinds = sorted(e["id"].split(":")[0] for e in ledger.entries("ada"))
        assert kinds == ["debit", "debit", "debit", "grant"]
        everything = [pid for role in pids.values() for pid in role]

    assert [pid for pid in everything if pid_alive(pid)] == []
    assert baseline.pids() == {"api": [], "worker": [], "redis": []}
