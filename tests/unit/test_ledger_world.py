"""The stateful test's money checks (tests/support/ledger_world.py) on hand-made worlds: a
partial draft's one partial refund passes; a second refund of any kind, a wrong amount or a
partial refund without a partial draft is found."""

from __future__ import annotations

from typing import Any

import pytest

from shared.store import paths
from tests.support.ledger_world import History, World, Written, check

PARTIAL = {"asked": 4, "made": 3, "reason": "1 image withheld.", "refund": 2}
MEDIA = [{"uri": f"gs://media/media/u/c/1-x/{i}.png"} for i in range(3)]


def entry(kind: str, amount: int, creation_id: str | None = "c") -> dict[str, Any]:
    return {"kind": kind, "amount": amount, "creation_id": creation_id}


def world(entries: dict[str, dict[str, Any]], creation: dict[str, Any] | None) -> World:
    return World(
        balances={"u": sum(e["amount"] for e in entries.values())},
        entries={"u": entries},
        creations={} if creation is None else {"c": creation},
        objects={},
        bucket="media",
    )


def history(*, deleted: bool = False) -> History:
    found = History()
    found.created["c"] = Written("u", "image", 8, 4)
    found.statuses["c"] = ["pending", "processing", "draft"]
    if deleted:
        found.deleted["c"] = "draft"
        found.partials["c"] = dict(PARTIAL)
    return found


def draft(partial: dict[str, Any] | None = PARTIAL) -> dict[str, Any]:
    return {
        "user_id": "u",
        "type": "image",
        "status": "draft",
        "progress": 100,
        "media": MEDIA,
        "refunded": False,
        "attempts": 1,
        **({"partial": partial} if partial is not None else {}),
    }


PAID = {
    "grant:g": entry("grant", 10, None),
    "debit:c": entry("debit", -8),
    "refund:c:partial": entry("refund", 2),
}


def money_problems(found_world: World, found_history: History) -> list[str]:
    return check(found_world, found_history, max_attempts=5).problems


def test_a_partial_draft_refunded_once_for_what_is_missing_passes() -> None:
    assert money_problems(world(PAID, draft()), history()) == []
    assert money_problems(world(PAID, None), history(deleted=True)) == []


@pytest.mark.parametrize(
    ("entries", "creation", "found"),
    [
        ({**PAID, "refund:c": entry("refund", 8)}, draft(), "refunded in full and in part"),
        ({**PAID, "refund:c:partial": entry("refund", 3)}, draft(), "is refunded as"),
        (PAID, draft(None), "no partial draft"),
        (
            {k: v for k, v in PAID.items() if k != "refund:c:partial"},
            draft(),
            "is refunded as []",
        ),
        (PAID, draft({**PARTIAL, "refund": 1}), "(cost 8, 4 asked)"),
    ],
    ids=["and-in-full", "wrong-amount", "not-partial", "never-refunded", "says-another-amount"],
)
def test_a_partial_refund_that_breaks_the_promise_is_found(
    entries: dict[str, dict[str, Any]], creation: dict[str, Any], found: str
) -> None:
    problems = money_problems(world(entries, creation), history())
    assert any(found in problem for problem in problems), problems


def test_a_deleted_partial_draft_without_its_refund_is_found() -> None:
    entries = {k: v for k, v in PAID.items() if k != "refund:c:partial"}
    problems = money_problems(world(entries, None), history(deleted=True))
    assert any("is refunded as []" in problem for problem in problems), problems
    assert paths.partial_refund_entry("u", "c").endswith("/refund:c:partial")
