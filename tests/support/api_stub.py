"""An in-process stub of the HTTP API for the command-line client's tests (httpx's
MockTransport: no socket): scripted answers per (method, path), and what was sent."""

from __future__ import annotations

from typing import Any

import httpx


class Stub:
    """Answers requests in order of a script per (method, path); records what was sent."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[httpx.Response]] = {}
        self.sent: list[httpx.Request] = []

    def on(self, method: str, path: str, *answers: httpx.Response) -> None:
        self.routes.setdefault((method, path), []).extend(answers)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        answers = self.routes.get((request.method, request.url.path))
        assert answers, f"unexpected {request.method} {request.url}"
        # The last answer repeats.
        return answers.pop(0) if len(answers) > 1 else answers[0]


def answer(status: int, body: Any = None, headers: dict[str, str] | None = None) -> httpx.Response:
    if body is None:
        return httpx.Response(status, headers=headers)
    return httpx.Response(status, json=body, headers=headers)
