"""`creations pricing` and `--estimate`, against an in-process stub of the API: every price the
client prints is the API's (no number of its own), and an estimate submits nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from creations_cli.commands import Wiring, build_app
from tests.support.api_stub import Stub, answer

API = "http://api.test"

# Prices no deployment defaults to, so a number the client made up would show.
PRICE_LIST: dict[str, Any] = {
    "currency": "tokens",
    "models": [
        {"model": "img-a", "type": "image", "unit": "image", "unit_tokens": 3, "default": True},
        {"model": "vid-b", "type": "video", "unit": "second", "unit_tokens": 7, "default": True},
        {"model": "vid-c", "type": "video", "unit": "second", "unit_tokens": 1, "default": False},
    ],
    "defaults": {"image": "img-a", "video": "vid-b"},
    "reel": {"tokens": 11},
    "limits": {
        "count": {"min": 1, "max": 4, "default": 1},
        "duration_seconds": {"min": 4, "max": 8, "default": 8},
        "clips": {"min": 2, "max": 20},
    },
}


@pytest.fixture
def stub() -> Stub:
    return Stub()


@pytest.fixture
def invoke(stub: Stub) -> Callable[..., Result]:
    app = build_app(Wiring(transport=httpx.MockTransport(stub), repos=lambda: []))

    def run(*args: str) -> Result:
        return CliRunner().invoke(
            app, ["--api", API, "--token", "t0k", *args], env={"COLUMNS": "200"}
        )

    return run


def test_pricing_prints_the_apis_table(invoke: Callable[..., Result], stub: Stub) -> None:
    stub.on("GET", "/v1/pricing", answer(200, PRICE_LIST))
    result = invoke("pricing")
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.stdout.splitlines()]
    assert ["img-a", "image", "3", "tokens", "per", "image", "yes"] in rows
    assert ["vid-b", "video", "7", "tokens", "per", "second", "yes"] in rows
    assert ["vid-c", "video", "1", "token", "per", "second"] in rows
    assert "reel: 11 tokens" in result.stdout
    assert "video seconds: 4-8 (default 8)" in result.stdout


def test_pricing_json_is_the_apis_json(invoke: Callable[..., Result], stub: Stub) -> None:
    stub.on("GET", "/v1/pricing", answer(200, PRICE_LIST))
    result = invoke("pricing", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == PRICE_LIST


def test_submit_estimate_sends_the_same_body_and_submits_nothing(
    invoke: Callable[..., Result], stub: Stub
) -> None:
    stub.on(
        "POST",
        "/v1/creations:estimate",
        answer(200, {"cost": 21, "balance": 5, "enough": False}),
    )
    result = invoke("submit", "video", "waves", "--duration", "3", "--model", "vid-b", "--estimate")
    assert result.exit_code == 0, result.output
    [request] = stub.sent  # no POST /v1/creations
    assert request.url.path == "/v1/creations:estimate"
    assert json.loads(request.content) == {
        "type": "video",
        "prompt": "waves",
        "duration_seconds": 3,
        "model": "vid-b",
    }
    assert "costs 21 tokens; you have 5: 16 tokens more needed" in result.stdout
    assert "Nothing submitted" in result.stdout


def test_estimate_json_and_a_refusal_are_the_apis(
    invoke: Callable[..., Result], stub: Stub
) -> None:
    stub.on(
        "POST", "/v1/creations:estimate", answer(200, {"cost": 3, "balance": 9, "enough": True})
    )
    ok = invoke("submit", "image", "a fox", "--estimate", "--json")
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout) == {"cost": 3, "balance": 9, "enough": True}
    refusal = {"error": {"code": "invalid_request", "message": "count: must be at most 4"}}
    stub.routes[("POST", "/v1/creations:estimate")] = [answer(400, refusal)]
    refused = invoke("submit", "image", "a fox", "--count", "9", "--estimate")
    assert refused.exit_code == 1
    assert "count: must be at most 4" in refused.stderr


def test_reel_estimate_asks_the_reel_estimate(invoke: Callable[..., Result], stub: Stub) -> None:
    stub.on("POST", "/v1/reels:estimate", answer(200, {"cost": 11, "balance": 20, "enough": True}))
    result = invoke("reel", "v1", "v2", "--estimate")
    assert result.exit_code == 0, result.output
    [request] = stub.sent
    assert json.loads(request.content) == {"clips": ["v1", "v2"]}
    assert "costs 11 tokens; you have 20. Nothing submitted" in result.stdout


def test_estimate_with_follow_is_a_usage_error(invoke: Callable[..., Result], stub: Stub) -> None:
    result = invoke("submit", "image", "a fox", "--estimate", "--follow")
    assert result.exit_code == 2
    assert "--follow" in result.output
    assert stub.sent == []
