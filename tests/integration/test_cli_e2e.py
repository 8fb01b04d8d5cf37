"""The installed `creations` console script, run as a user runs it, against a whole local stack
(every function its own process, as `make dev` runs them): it speaks only HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.support.stack import RunningStack, start_stack
from tools.stack.devauth import DevSigner
from tools.stack.emulators import EmulatorSet
from tools.stack.processes import free_port

CREATIONS = Path(sys.executable).parent / "creations"
RUN_TIMEOUT_SECONDS = 180
# The codes docs/cli.md documents.
API_ERROR, UNREACHABLE, NOT_DRAFT = 1, 3, 4


@dataclass(frozen=True)
class Ran:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


@pytest.fixture(scope="module")
def chain(
    emulators: EmulatorSet,
    base_env: dict[str, str],
    signer: DevSigner,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningStack]:
    running = start_stack(emulators, base_env, signer, tmp_path_factory.mktemp("cli-e2e"), {})
    try:
        yield running
    finally:
        running.stack.stop()


def creations(*args: str, env: dict[str, str], cwd: Path) -> Ran:
    """`creations ARGS` in a clean environment: only what the test sets says where the API is."""
    plain = {k: v for k, v in os.environ.items() if not k.startswith("CREATIONS_")}
    done = subprocess.run(
        [str(CREATIONS), *args],
        env={**plain, "COLUMNS": "200", **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
        check=False,
    )
    return Ran(done.returncode, done.stdout, done.stderr)


def user_env(chain: RunningStack, uid: str) -> dict[str, str]:
    token = chain.headers(uid)["Authorization"].removeprefix("Bearer ")
    return {"CREATIONS_API": chain.stack.url("submit"), "CREATIONS_TOKEN": token}


def test_the_console_script_is_installed() -> None:
    assert CREATIONS.exists(), f"{CREATIONS} is missing: `make venv` installs cli/"


def test_submit_follow_download_and_delete_an_image(chain: RunningStack, tmp_path: Path) -> None:
    chain.ledger.grant("cli-ana", 5)
    env = user_env(chain, "cli-ana")
    followed = creations("submit", "image", "a lighthouse", "--follow", env=env, cwd=tmp_path)
    assert followed.code == 0, followed.stderr
    assert "draft" in followed.stdout
    assert "http://" in followed.stdout  # the media URL
    assert "100%" in followed.stderr  # the progress bar, at its end
    [item] = creations("list", "--json", env=env, cwd=tmp_path).json()["items"]
    creation_id = item["id"]
    assert followed.stdout.startswith(creation_id)

    got = creations("download", creation_id, "-o", str(tmp_path / "out"), env=env, cwd=tmp_path)
    assert got.code == 0, got.stderr
    [png] = list((tmp_path / "out").iterdir())
    assert png.name == f"{creation_id}-0.png"
    with Image.open(png) as image:
        assert image.format == "PNG"
        image.load()  # decodes every pixel
        assert max(image.size) == 256  # OFFLINE_IMAGE_LONG_SIDE_PX of the test stack
    assert png.stat().st_size == item["media"][0]["bytes"]

    deleted = creations("delete", creation_id, "--yes", env=env, cwd=tmp_path)
    assert deleted.code == 0, deleted.stderr
    gone = creations("show", creation_id, env=env, cwd=tmp_path)
    assert gone.code == API_ERROR
    assert "not_found" in gone.stderr
    assert chain.ledger.balance("cli-ana") == 4


def test_a_failing_prompt_exits_non_zero_and_reports_the_refund(
    chain: RunningStack, tmp_path: Path
) -> None:
    chain.ledger.grant("cli-ben", 3)
    env = user_env(chain, "cli-ben")
    failed = creations("submit", "image", "storm [fail:safety]", "--follow", env=env, cwd=tmp_path)
    assert failed.code == NOT_DRAFT, failed.stderr
    assert "safety_blocked" in failed.stdout
    assert "refunded: yes" in failed.stdout
    assert creations("balance", "--json", env=env, cwd=tmp_path).json() == {"tokens": 3}
    chain.assert_ledgers_balance()


def test_json_output_is_the_api_json_and_errors_carry_the_api_code(
    chain: RunningStack, tmp_path: Path
) -> None:
    chain.ledger.grant("cli-cy", 1)
    env = user_env(chain, "cli-cy")
    accepted = creations("submit", "image", "fog", "--json", env=env, cwd=tmp_path)
    assert accepted.code == 0, accepted.stderr
    body = accepted.json()
    assert body["status"] == "pending"
    assert body["balance"] == 0
    final = creations("show", body["id"], "--follow", "--json", env=env, cwd=tmp_path).json()
    assert final["status"] == "draft"
    short = creations("submit", "image", "more fog", env=env, cwd=tmp_path)
    assert short.code == API_ERROR
    assert "insufficient_tokens" in short.stderr
    assert short.stdout == ""


def test_pricing_and_an_estimate_are_the_apis_and_debit_nothing(
    chain: RunningStack, tmp_path: Path
) -> None:
    chain.ledger.grant("cli-dee", 3)
    env = user_env(chain, "cli-dee")
    listed = creations("pricing", "--json", env=env, cwd=tmp_path)
    assert listed.code == 0, listed.stderr
    assert listed.json()["reel"] == {"tokens": chain.settings.pricing.reel_tokens}
    table = creations("pricing", env=env, cwd=tmp_path)
    assert chain.settings.default_image_model in table.stdout
    estimated = creations(
        "submit", "video", "surf", "--duration", "5", "--estimate", "--json", env=env, cwd=tmp_path
    )
    assert estimated.code == 0, estimated.stderr
    cost = 5 * chain.settings.pricing.video_tokens_per_second
    assert estimated.json() == {"cost": cost, "balance": 3, "enough": cost <= 3}
    assert creations("balance", "--json", env=env, cwd=tmp_path).json() == {"tokens": 3}
    assert creations("list", "--json", env=env, cwd=tmp_path).json()["items"] == []


def test_an_unreachable_api_names_its_url_and_exits_3(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    ran = creations("balance", env={"CREATIONS_API": url, "CREATIONS_TOKEN": "t"}, cwd=tmp_path)
    assert ran.code == UNREACHABLE
    assert f"cannot reach the API at {url}" in ran.stderr
