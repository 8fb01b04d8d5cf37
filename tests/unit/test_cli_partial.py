"""The CLI shows a partial draft as what was made and what came back ("3 of 4 made, 1 token
refunded"), and nothing of the kind for any other creation."""

from __future__ import annotations

from typing import Any

from creations_cli.render import creation_summary, partial_text


def draft(partial: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "id": "c1",
        "type": "image",
        "status": "draft",
        "progress": 100,
        "request": {"prompt": "koi", "count": 4},
        "cost": 4,
        "media": [{"uri": f"gs://m/{i}.png"} for i in range(3)],
        "error": None,
        "refunded": False,
        "partial": partial,
    }


WITHHELD = "1 image withheld by the provider's safety filter."


def test_a_partial_draft_says_what_was_made_and_refunded() -> None:
    creation = draft({"asked": 4, "made": 3, "reason": WITHHELD, "refund": 1})
    assert partial_text(creation) == f"3 of 4 made, 1 token refunded ({WITHHELD})"
    assert f"\n3 of 4 made, 1 token refunded ({WITHHELD})\n" in creation_summary(creation).plain
    two = draft({"asked": 4, "made": 2, "reason": "", "refund": 4})
    assert partial_text(two) == "2 of 4 made, 4 tokens refunded"


def test_a_whole_draft_says_nothing_of_the_kind() -> None:
    assert partial_text(draft(None)) is None
    assert "made," not in creation_summary(draft(None)).plain
