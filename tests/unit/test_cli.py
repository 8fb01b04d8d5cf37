"""The `creations` command-line client against an in-process stub of the API (httpx's
MockTransport: no socket), with the follow loop's sleep and clock replaced."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from typer.testing import CliRunner, Result

from creations_cli import config
from creations_cli.commands import Wiring, build_app
from creations_cli.download import media_file_name
from creations_cli.exits import ConfigError, Exit
from creations_cli.follow import FollowPolicy
from tests.support.api_stub import Stub, answer

API = "http://api.test"
PNG = b"\x89PNG\r\n\x1a\n" + b"x" * 100

Handler = Callable[[httpx.Request], httpx.Response]


def creation(status: str, progress: int = 0, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "c1",
        "user_id": "ana",
        "type": "image",
        "status": status,
        "progress": progress,
        "request": {"type": "image", "prompt": "a lighthouse"},
        "cost": 1,
        "media": [],
        "error": None,
        "refunded": False,
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": None,
        "completed_at": None,
    }
    return {**base, **fields}


def png_media(size: int = len(PNG)) -> list[dict[str, Any]]:
    return [
        {
            "uri": "gs://media/media/ana/c1/0.png",
            "url": "http://storage.test/media/media/ana/c1/0.png?X-Goog-Signature=abc",
            "url_expires_at": "2026-01-01T00:15:00Z",
            "content_type": "image/png",
            "bytes": size,
        }
    ]


@pytest.fixture
def stub() -> Stub:
    return Stub()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def invoke(stub: Stub, sleeps: list[float]) -> Iterator[Callable[..., Result]]:
    clock = [0.0]

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock[0] += seconds

    wiring = Wiring(
        transport=httpx.MockTransport(stub),
        policy=FollowPolicy(
            interval_seconds=1.0, refund_wait_seconds=5, sleep=sleep, clock=lambda: clock[0]
        ),
        repos=lambda: [],
    )
    app = build_app(wiring)
    runner = CliRunner()

    def run(*args: str, input: str | None = None) -> Result:
        return runner.invoke(
            app, ["--api", API, "--token", "t0k", *args], input=input, env={"COLUMNS": "200"}
        )

    yield run


def test_submit_sends_only_the_options_given_with_the_token_and_key(
    invoke: Callable[..., Result], stub: Stub
) -> None:
    stub.on("POST", "/v1/creations", answer(202, {**creation("pending"), "balance": 4}))
    result = invoke(
        "submit",
        "video",
        "waves",
        "--duration",
        "4",
        "--image",
        "img1",
        "--image-index",
        "1",
        "--idempotency-key",
        "k-1",
        "--seed",
        "0",
    )
    assert result.exit_code == 0, result.output
    [request] = stub.sent
    assert json.loads(request.content) == {
        "type": "video",
        "prompt": "waves",
        "duration_seconds": 4,
        "image": "img1",
        "image_index": 1,
        "seed": 0,
    }
    assert request.headers["Authorization"] == "Bearer t0k"
    assert request.headers["Idempotency-Key"] == "k-1"
    assert "creations show c1 --follow" in result.stderr


def test_a_webhook_goes_in_the_body_with_its_events(
    invoke: Callable[..., Result], stub: Stub
) -> None:
    stub.on("POST", "/v1/creations", answer(202, {**creation("pending"), "balance": 4}))
    stub.on("POST", "/v1/reels", answer(202, {**creation("pending"), "balance": 2}))
    hook = "https://hooks.example.com/in"
    argv = ["--webhook", hook, "--webhook-event", "completed", "--webhook-event", "processing"]
    assert invoke("submit", "image", "a fox", *argv).exit_code == 0
    assert invoke("reel", "v1", "v2", "--webhook", hook).exit_code == 0
    first, second = (json.loads(request.content) for request in stub.sent)
    assert first["webhook"] == {"url": hook, "events": ["completed", "processing"]}
    assert second["webhook"] == {"url": hook}
    refused = invoke("submit", "image", "a fox", "--webhook-event", "failed")
    assert refused.exit_code == 2 and "--webhook" in refused.output
    assert len(stub.sent) == 2  # nothing sent for the usage error


def test_follow_polls_until_draft_then_prints_the_media_urls(
    invoke: Callable[..., Result], stub: Stub, sleeps: list[float]
) -> None:
    stub.on("POST", "/v1/creations", answer(202, {**creation("pending"), "balance": 4}))
    stub.on(
        "GET",
        "/v1/creations/c1",
        answer(200, creation("processing", 40)),
        answer(200, creation("draft", 100, media=png_media())),
    )
    result = invoke("submit", "image", "a lighthouse", "--follow")
    assert result.exit_code == 0, result.output
    assert png_media()[0]["url"] in result.stdout
    assert "draft" in result.stdout
    assert sleeps == [1.0, 1.0]  # one modest pause per poll, never a tight loop


def test_a_failure_waits_for_the_refund_and_exits_not_draft(
    invoke: Callable[..., Result], stub: Stub
) -> None:
    error = {"code": "safety_blocked", "message": "blocked"}
    stub.on("POST", "/v1/creations", answer(202, {**creation("pending"), "balance": 4}))
    stub.on(
        "GET",
        "/v1/creations/c1",
        answer(200, creation("failed", error=error)),
        answer(200, creation("failed", error=error, refunded=True)),
    )
    result = invoke("submit", "image", "storm", "--follow")
    assert result.exit_code == Exit.NOT_DRAFT
    assert "safety_blocked: blocked" in result.stdout
    assert "refunded: yes" in result.stdout


def test_a_refund_that_does_not_come_in_time_is_reported_as_pending(
    invoke: Callable[..., Result], stub: Stub
) -> None:
    stub.on("GET", "/v1/creations/c1", answer(200, creation("canceled")))
    result = invoke("show", "c1", "--follow")
    assert result.exit_code == Exit.NOT_DRAFT
    assert "refunded: not yet" in result.stdout


def test_follow_with_json_prints_only_the_final_creation(
    invoke: Callable[..., Result], stub: Stub
) -> None:
    stub.on(
        "GET",
        "/v1/creations/c1",
        answer(200, creation("processing")),
        answer(200, creation("draft", 100, media=png_media())),
    )
    result = invoke("show", "c1", "--follow", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["status"] == "draft"


def test_ctrl_c_while_following_leaves_the_creation_and_says_how_to_resume(
    stub: Stub,
) -> None:
    def interrupted(_seconds: float) -> None:
        raise KeyboardInterrupt

    stub.on("GET", "/v1/creations/c1", answer(200, creation("processing", 30)))
    app = build_app(
        Wiring(
            transport=httpx.MockTransport(stub),
            policy=FollowPolicy(sleep=interrupted),
            repos=lambda: [],
        )
    )
    result = CliRunner().invoke(app, ["--api", API, "--token", "t", "show", "c1", "--follow"])
    assert result.exit_code == Exit.INTERRUPTED
    assert "creations show c1 --follow" in result.stderr
    assert [r.method for r in stub.sent] == ["GET"]  # nothing canceled


def test_an_api_error_prints_its_code_and_message_on_stderr(
    invoke: Callable[..., Result], stub: Stub
) -> None:
    body = {"error": {"code": "insufficient_tokens", "message": "balance 0 is below cost 1"}}
    stub.on("POST", "/v1/creations", answer(402, body))
    result = invoke("submit", "image", "x")
    assert result.exit_code == Exit.API_ERROR
    assert "insufficient_tokens: balance 0 is below cost 1" in result.stderr
    assert result.stdout == ""
    with_json = invoke("submit", "image", "x", "--json")
    assert json.loads(with_json.stdout) == body


def test_list_pages_through_next_cursor_up_to_the_limit(
    invoke: Callable[..., Result], stub: Stub
) -> None:
    stub.on(
        "GET",
        "/v1/creations",
        answer(
            200,
            {
                "items": [creation("draft", id="a"), creation("draft", id="b")],
                "next_cursor": "cur1",
            },
        ),
        answer(200, {"items": [creation("failed", id="c")], "next_cursor": "cur2"}),
    )
    result = invoke("list", "--limit", "3", "--status", "draft", "--json")
    assert result.exit_code == 0, result.output
    page = json.loads(result.stdout)
    assert [item["id"] for item in page["items"]] == ["a", "b", "c"]
    first, second = (dict(r.url.params) for r in stub.sent)
    assert first == {"limit": "3", "status": "draft"}
    assert second == {"limit": "1", "status": "draft", "cursor": "cur1"}


def test_download_writes_the_file_named_from_the_media_without_the_token(
    invoke: Callable[..., Result], stub: Stub, tmp_path: Path
) -> None:
    stub.on("GET", "/v1/creations/c1", answer(200, creation("draft", 100, media=png_media())))
    stub.on("GET", "/media/media/ana/c1/0.png", httpx.Response(200, content=PNG))
    result = invoke("download", "c1", "-o", str(tmp_path), "--json")
    assert result.exit_code == 0, result.output
    [saved] = json.loads(result.stdout)["files"]
    assert Path(saved["path"]) == tmp_path / "c1-0.png"
    assert (tmp_path / "c1-0.png").read_bytes() == PNG
    assert "Authorization" not in stub.sent[-1].headers


def test_download_refuses_a_file_whose_size_is_not_the_media_size(
    invoke: Callable[..., Result], stub: Stub, tmp_path: Path
) -> None:
    stub.on(
        "GET",
        "/v1/creations/c1",
        answer(200, creation("draft", 100, media=png_media(len(PNG) + 1))),
    )
    stub.on("GET", "/media/media/ana/c1/0.png", httpx.Response(200, content=PNG))
    result = invoke("download", "c1", "-o", str(tmp_path))
    assert result.exit_code == Exit.DOWNLOAD
    assert "the media item's bytes" in result.stderr
    assert list(tmp_path.iterdir()) == []  # no partial file left behind


def test_delete_asks_first_and_sends_nothing_when_refused(
    invoke: Callable[..., Result], stub: Stub
) -> None:
    refused = invoke("delete", "c1", input="n\n")
    assert refused.exit_code == Exit.USAGE
    assert stub.sent == []
    stub.on("DELETE", "/v1/creations/c1", answer(204))
    done = invoke("delete", "c1", "--yes", "--json")
    assert done.exit_code == 0
    assert json.loads(done.stdout) == {"id": "c1", "deleted": True}


def test_a_malformed_id_is_a_usage_error_before_any_request(
    invoke: Callable[..., Result], stub: Stub
) -> None:
    result = invoke("show", "../balance")
    assert result.exit_code == Exit.USAGE
    assert stub.sent == []


def test_balance_and_cancel_print_the_api_json(invoke: Callable[..., Result], stub: Stub) -> None:
    stub.on("GET", "/v1/balance", answer(200, {"tokens": 7}))
    stub.on("POST", "/v1/creations/c1:cancel", answer(200, creation("canceled", refunded=True)))
    assert json.loads(invoke("balance", "--json").stdout) == {"tokens": 7}
    assert json.loads(invoke("cancel", "c1", "--json").stdout)["status"] == "canceled"


def test_a_transport_failure_names_the_url_and_exits_unreachable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused", request=request)

    app = build_app(Wiring(transport=httpx.MockTransport(refuse), repos=lambda: []))
    result = CliRunner().invoke(app, ["--api", API, "--token", "t", "balance"])
    assert result.exit_code == Exit.UNREACHABLE
    assert f"cannot reach the API at {API}" in result.stderr


def test_media_file_names_never_leave_the_folder() -> None:
    assert media_file_name("c1", 0, {"uri": "gs://b/media/u/c1/0.png"}) == "c1-0.png"
    assert media_file_name("c1", 1, {"url": "http://h/x/..%2F..%2Fetc?s=1"}) == "c1-_2F.._2Fetc"
    assert media_file_name("c1", 1, {"url": "http://h/x/.."}) == "c1-1"
    assert media_file_name("c1", 2, {"content_type": "video/mp4"}) == "c1-2.mp4"


# --- configuration -----------------------------------------------------------------------------


def write_stack(repo: Path, pid: int, url: str = "http://127.0.0.1:8080") -> None:
    (repo / ".dev").mkdir(parents=True)
    (repo / ".dev" / "stack.json").write_text(json.dumps({"pid": pid, "env": {"SUBMIT_URL": url}}))


def test_flags_need_no_dev_stack() -> None:
    connection = config.resolve(api=API, token="t", user=None, repos=[], mint=_no_mint)
    assert connection == config.Connection(base_url=API, token="t")


def test_a_running_dev_stack_gives_its_url_and_a_token_for_the_default_user(
    tmp_path: Path,
) -> None:
    write_stack(tmp_path, os.getpid())
    minted: list[str] = []

    def mint(stack: config.DevStack, user: str) -> str:
        minted.append(user)
        return f"token-of-{user}"

    connection = config.resolve(api=None, token=None, user=None, repos=[tmp_path], mint=mint)
    assert connection == config.Connection("http://127.0.0.1:8080", "token-of-dev", "dev")
    named = config.resolve(api=None, token="ignored", user="bo", repos=[tmp_path], mint=mint)
    assert named.token == "token-of-bo"


def test_a_stack_file_whose_process_is_gone_is_no_stack(tmp_path: Path) -> None:
    write_stack(tmp_path, pid=12345)
    with pytest.raises(ConfigError, match="CREATIONS_API") as raised:
        config.resolve(
            api=None,
            token=None,
            user=None,
            repos=[tmp_path],
            alive=lambda pid: False,
            mint=_no_mint,
        )
    assert raised.value.hint is not None and "make dev" in raised.value.hint


def test_an_api_without_a_token_or_stack_says_what_to_set() -> None:
    with pytest.raises(ConfigError, match="CREATIONS_TOKEN"):
        config.resolve(api=API, token=None, user=None, repos=[], mint=_no_mint)


def test_candidate_repos_are_the_folder_its_parents_and_the_checkout(tmp_path: Path) -> None:
    package_file = tmp_path / "checkout" / "cli" / "creations_cli" / "config.py"
    repos = config.candidate_repos(tmp_path / "work", package_file)
    assert repos[0] == tmp_path / "work"
    assert repos[-1] == tmp_path / "checkout"


def _no_mint(stack: config.DevStack, user: str) -> str:
    raise AssertionError("no token should be minted")


def test_the_console_script_is_the_app() -> None:
    from creations_cli import main

    assert isinstance(main.app, typer.Typer)


def test_error_answers_say_what_to_do_next(invoke: Callable[..., Result], stub: Stub) -> None:
    busy = {"error": {"code": "busy", "message": "the store is contended"}}
    unconfirmed = {
        "error": {"code": "unconfirmed", "message": "not confirmed"},
        "creation_id": "c9",
    }
    stub.on(
        "POST",
        "/v1/creations",
        answer(503, busy, {"Retry-After": "2"}),
        answer(503, unconfirmed, {"Retry-After": "1", "Location": "/v1/creations/c9"}),
    )
    first = invoke("submit", "image", "x")
    assert first.exit_code == Exit.API_ERROR
    assert "nothing was debited; try again in 2 s" in first.stderr
    second = invoke("submit", "image", "x")
    assert "creations show c9" in second.stderr


def test_following_rides_out_a_busy_answer_and_says_how_to_resume_when_the_api_goes(
    stub: Stub,
) -> None:
    answers = iter(
        [
            answer(200, creation("processing", 10)),
            answer(503, {"error": {"code": "busy", "message": "contended"}}),
            answer(200, creation("processing", 60)),
        ]
    )

    def flaky(request: httpx.Request) -> httpx.Response:
        stub.sent.append(request)
        following = next(answers, None)
        if following is None:
            raise httpx.ConnectError("Connection refused", request=request)
        return following

    app = build_app(
        Wiring(
            transport=httpx.MockTransport(flaky),
            policy=FollowPolicy(sleep=lambda _s: None),
            repos=lambda: [],
        )
    )
    result = CliRunner().invoke(app, ["--api", API, "--token", "t", "show", "c1", "--follow"])
    assert result.exit_code == Exit.UNREACHABLE
    assert len(stub.sent) == 4  # the busy answer did not end the follow; the refusal did
    assert "follow it again: creations show c1 --follow" in result.stderr
