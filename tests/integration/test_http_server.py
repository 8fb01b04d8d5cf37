"""The submit function served by the functions-framework CLI over real HTTP, as `make dev` does."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import requests

from shared.core.settings import Settings
from shared.money.ledger import Ledger

Auth = Callable[[str], dict[str, str]]


def test_image_request_over_http(submit_url: str, auth: Auth, ledger: Ledger) -> None:
    ledger.grant("alice", 10)
    response = requests.post(
        f"{submit_url}/v1/creations",
        headers=auth("alice"),
        json={"type": "image", "prompt": "a cat"},
        timeout=30,
    )
    assert response.status_code == 202
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert body["status"] == "pending"
    assert body["balance"] == 10 - body["cost"]
    got = requests.get(f"{submit_url}/v1/creations/{body['id']}", headers=auth("alice"), timeout=30)
    assert got.status_code == 200
    assert got.json()["id"] == body["id"]


def test_ten_concurrent_submits_never_overspend(
    submit_url: str, auth: Auth, ledger: Ledger, stack: Settings
) -> None:
    # GIVEN bob's balance covers exactly 3 images
    price = stack.pricing.image_tokens_per_image
    ledger.grant("bob", 3 * price)
    headers = auth("bob")

    def one(i: int) -> requests.Response:
        # The request timeout is the promise under test: every call is answered within 30 s.
        return requests.post(
            f"{submit_url}/v1/creations",
            headers=headers,
            json={"type": "image", "prompt": f"burst {i}"},
            timeout=30,
        )

    # WHEN he sends 10 at once
    with ThreadPoolExecutor(max_workers=10) as pool:
        responses = list(pool.map(one, range(10)))
    # THEN at most 3 are accepted, the rest are 402 or a retryable 503, and none is a 500
    codes = [r.status_code for r in responses]
    print("burst answers:", sorted(codes))
    accepted = codes.count(202)
    assert 1 <= accepted <= 3, codes
    for response in responses:
        if response.status_code == 202:
            continue
        assert response.status_code in (402, 503), codes
        if response.status_code == 503:
            assert response.json()["error"]["code"] == "busy"
            assert response.headers["Retry-After"].isdigit()
    # AND the balance is exactly what was not spent, never negative
    assert ledger.balance("bob") == 3 * price - accepted * price
    assert sum(1 for e in ledger.entries("bob") if e["kind"] == "debit") == accepted
