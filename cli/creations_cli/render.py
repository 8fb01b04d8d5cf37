"""What `creations` prints: JSON for scripts, tables and summaries for people, progress bars.

Results go to stdout; progress, notes and errors go to stderr, so `--json` leaves nothing but
the API's JSON on stdout. Text from the API (prompts, messages) is printed as text, never
read as rich markup.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text

from creations_cli.download import SavedFile
from creations_cli.exits import ApiError, CliError

Creation = dict[str, Any]
PROMPT_COLUMN_CHARS = 40
STATUS_STYLES = {
    "pending": "yellow",
    "processing": "cyan",
    "draft": "green",
    "failed": "red",
    "canceled": "magenta",
}


class Output:
    """The two consoles of one command run (`out` is stdout, `err` stderr)."""

    def __init__(self, *, json_mode: bool) -> None:
        self.json_mode = json_mode
        self.out = Console(highlight=False, soft_wrap=True)
        self.err = Console(stderr=True, highlight=False, soft_wrap=True)

    # --- scripts -------------------------------------------------------------------------------

    def json(self, value: Any) -> None:
        sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")
        sys.stdout.flush()

    # --- people --------------------------------------------------------------------------------

    def note(self, message: str) -> None:
        self.err.print(Text(message, style="dim"))

    def line(self, *parts: str | Text) -> None:
        self.out.print(Text.assemble(*parts))

    def error(self, error: CliError) -> None:
        if self.json_mode and isinstance(error, ApiError) and isinstance(error.body, dict):
            self.json(error.body)
        self.err.print(Text.assemble(("error: ", "bold red"), error.message))
        if error.hint:
            self.err.print(Text(error.hint, style="dim"))

    def creation(self, creation: Creation) -> None:
        """A creation in a few lines: what it is, where it is, what went wrong, its media."""
        self.out.print(creation_summary(creation))
        for url in media_urls(creation):
            self.out.print(Text(url), crop=False, overflow="ignore")

    def estimate(self, estimate: dict[str, Any]) -> None:
        self.out.print(estimate_text(estimate))

    def price_list(self, listed: dict[str, Any]) -> None:
        self.out.print(price_table(listed))
        for line in price_notes(listed):
            self.out.print(Text(line))

    def creations(self, items: Sequence[Creation], more: bool) -> None:
        self.out.print(creation_table(items))
        if more:
            self.note("more creations exist: raise --limit to see them")

    def saved(self, files: Sequence[SavedFile]) -> None:
        for saved in files:
            self.line(str(saved.path), f"  ({saved.bytes} bytes, {saved.content_type or '?'})")

    # --- progress ------------------------------------------------------------------------------

    @contextmanager
    def follow_bar(self, creation_id: str) -> Iterator[FollowBar]:
        bar = FollowBar(self.err, creation_id, enabled=not self.json_mode)
        with bar:
            yield bar

    @contextmanager
    def download_bars(self) -> Iterator[DownloadBars]:
        bars = DownloadBars(self.err, enabled=not self.json_mode)
        with bars:
            yield bars


class FollowBar:
    """A live bar from a creation's `progress` (0-100), described by its `status`."""

    def __init__(self, console: Console, creation_id: str, *, enabled: bool) -> None:
        self.enabled = enabled
        self.progress = Progress(
            TextColumn("{task.fields[creation]}"),
            TextColumn("[bold]{task.description:<10}"),
            BarColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
            disable=not enabled,
        )
        self.task = self.progress.add_task("pending", total=100, creation=creation_id)

    def __enter__(self) -> FollowBar:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def update(self, creation: Creation) -> None:
        status = str(creation.get("status", "?"))
        progress = creation.get("progress")
        if status == "draft":
            progress = 100
        waiting = status in ("failed", "canceled") and not creation.get("refunded")
        self.progress.update(
            self.task,
            description=f"{status} (refund pending)" if waiting else status,
            completed=progress if isinstance(progress, int) else 0,
        )


class DownloadBars:
    """One transfer bar per file (the `download.ProgressSink` of a download)."""

    def __init__(self, console: Console, *, enabled: bool) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=console,
            disable=not enabled,
        )

    def __enter__(self) -> DownloadBars:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def start(self, name: str, total: int | None) -> int:
        return int(self.progress.add_task(name, total=total))

    def advance(self, task: int, size: int) -> None:
        self.progress.advance(TaskID(task), size)


def api_error_hint(error: ApiError, dev_user: str | None) -> str | None:
    """What to do next about an error answer, from what the API says (docs/api.md)."""
    body = error.body if isinstance(error.body, dict) else {}
    if error.code == "insufficient_tokens" and dev_user is not None:
        return f"on the dev stack: make -s grant USER={dev_user} TOKENS=10"
    if error.code == "busy":
        wait = f" in {error.retry_after} s" if error.retry_after else ""
        return f"nothing was debited; try again{wait}"
    if error.code == "unconfirmed" and isinstance(body.get("creation_id"), str):
        return (
            f"look it up: creations show {body['creation_id']} (not_found there means nothing "
            "was debited), or retry with the same --idempotency-key"
        )
    if error.code == "queue_unavailable":
        refunded = "yes" if body.get("refunded") else "not yet (it follows within seconds)"
        return f"the creation failed before it ran; refunded: {refunded}"
    return None


def media_urls(creation: Creation) -> list[str]:
    media = creation.get("media")
    if not isinstance(media, list):
        return []
    return [
        item["url"] for item in media if isinstance(item, dict) and isinstance(item.get("url"), str)
    ]


def refund_text(creation: Creation) -> str:
    if creation.get("refunded"):
        cost = creation.get("cost", "?")
        return f"refunded: yes ({cost} token{'' if cost == 1 else 's'} back)"
    return "refunded: not yet (the refund function gives the tokens back shortly)"


def partial_text(creation: Creation) -> str | None:
    """A partial draft's line, "3 of 4 made, 1 token refunded (why)"; None if it is not one."""
    partial = creation.get("partial")
    if not isinstance(partial, dict):
        return None
    refund = partial.get("refund", "?")
    said = (
        f"{partial.get('made', '?')} of {partial.get('asked', '?')} made, "
        f"{refund} token{'' if refund == 1 else 's'} refunded"
    )
    reason = partial.get("reason")
    return f"{said} ({reason})" if isinstance(reason, str) and reason else said


def creation_summary(creation: Creation) -> Text:
    status = str(creation.get("status", "?"))
    request = creation.get("request") if isinstance(creation.get("request"), dict) else {}
    lines = Text()
    lines.append(f"{creation.get('id', '?')}", style="bold")
    lines.append(f"  {creation.get('type', '?')}  ")
    lines.append(status, style=STATUS_STYLES.get(status, ""))
    lines.append(f"  {creation.get('progress', 0)}%  cost {creation.get('cost', '?')}")
    if "balance" in creation:
        lines.append(f"  balance {creation['balance']}")
    prompt = request.get("prompt") if isinstance(request, dict) else None
    if isinstance(prompt, str):
        lines.append(f"\nprompt: {prompt}")
    error = creation.get("error")
    if isinstance(error, dict):
        lines.append(f"\nerror: {error.get('code')}: {error.get('message')}", style="red")
    if status in ("failed", "canceled"):
        lines.append(f"\n{refund_text(creation)}")
    partial = partial_text(creation)
    if partial is not None:
        lines.append(f"\n{partial}", style="yellow")
    media = creation.get("media")
    if isinstance(media, list) and media:
        lines.append(f"\nmedia ({len(media)}):")
    return lines


def tokens(amount: object) -> str:
    return f"{amount} token" if amount == 1 else f"{amount} tokens"


def estimate_text(estimate: dict[str, Any]) -> Text:
    """`POST ...:estimate`'s answer for people: the cost, the balance, what is missing."""
    cost, balance = estimate.get("cost"), estimate.get("balance")
    line = f"costs {tokens(cost)}; you have {balance}"
    if estimate.get("enough"):
        return Text(f"{line}. Nothing submitted (--estimate).")
    short = cost - balance if isinstance(cost, int) and isinstance(balance, int) else "?"
    return Text(f"{line}: {tokens(short)} more needed. Nothing submitted (--estimate).")


def price_table(listed: dict[str, Any]) -> Table:
    """`GET /v1/pricing` for people: one row per model, its price per image or per second."""
    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    table.add_column("model", no_wrap=True)
    table.add_column("type", no_wrap=True)
    table.add_column("price", no_wrap=True)
    table.add_column("default", no_wrap=True)
    models = listed.get("models")
    for model in models if isinstance(models, list) else []:
        if not isinstance(model, dict):
            continue
        table.add_row(
            Text(str(model.get("model", "?"))),
            Text(str(model.get("type", "?"))),
            Text(f"{tokens(model.get('unit_tokens', '?'))} per {model.get('unit', '?')}"),
            Text("yes" if model.get("default") else ""),
        )
    return table


def price_notes(listed: dict[str, Any]) -> list[str]:
    """The reel price and the sizes a request may ask for, under the table."""
    reel = listed.get("reel") if isinstance(listed.get("reel"), dict) else {}
    limits = listed.get("limits") if isinstance(listed.get("limits"), dict) else {}
    notes = [f"reel: {tokens(reel.get('tokens', '?'))}" if isinstance(reel, dict) else ""]
    for name, label in (("count", "images"), ("duration_seconds", "video seconds")):
        limit = limits.get(name) if isinstance(limits, dict) else None
        if isinstance(limit, dict):
            notes.append(
                f"{label}: {limit.get('min')}-{limit.get('max')} (default {limit.get('default')})"
            )
    notes.append("cost = price x images (or seconds); a reel is flat")
    return [note for note in notes if note]


def creation_table(items: Sequence[Creation]) -> Table:
    """One row per creation; only the prompt column wraps, so ids stay whole for copying."""
    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    table.add_column("id", no_wrap=True, min_width=8)
    table.add_column("type", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("created", no_wrap=True)
    table.add_column("prompt", min_width=12, overflow="fold")
    for item in items:
        status = str(item.get("status", "?"))
        shown_status = (
            status
            if status in ("draft", "failed", "canceled")
            else (f"{status} {item.get('progress', 0)}%")
        )
        request = item.get("request") if isinstance(item.get("request"), dict) else {}
        prompt = request.get("prompt", "") if isinstance(request, dict) else ""
        title = request.get("title", "") if isinstance(request, dict) else ""
        shown = str(prompt or title or "")
        if len(shown) > PROMPT_COLUMN_CHARS:
            shown = shown[: PROMPT_COLUMN_CHARS - 1] + "…"
        created = str(item.get("created_at") or "")[:16].replace("T", " ")
        table.add_row(
            Text(str(item.get("id", "?"))),
            Text(str(item.get("type", "?"))),
            Text(shown_status, style=STATUS_STYLES.get(status, "")),
            Text(created),
            Text(shown),
        )
    return table
