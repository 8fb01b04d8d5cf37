"""The commands of `creations`, each one call (or a few) of the HTTP API.

`build_app` takes what tests replace: the HTTP transport, the follow policy (sleep, clock),
where to look for a dev stack and how to mint its tokens. Every command has `--json`; every
`CliError` ends the command with its exit code (exits.py) after one message on stderr.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from creations_cli import config
from creations_cli.client import ApiClient, check_creation_id
from creations_cli.download import download_media
from creations_cli.exits import ApiError, CliError, Exit, Unreachable
from creations_cli.follow import FollowPolicy, follow, is_final
from creations_cli.render import Output, api_error_hint

LIST_PAGE_MAX = 100  # the API's largest page


class Kind(StrEnum):
    image = "image"
    video = "video"


class Status(StrEnum):
    pending = "pending"
    processing = "processing"
    draft = "draft"
    failed = "failed"
    canceled = "canceled"


@dataclass
class Wiring:
    """What a run of the app is built from; tests replace the network and the clock."""

    transport: httpx.BaseTransport | None = None
    policy: FollowPolicy = field(default_factory=FollowPolicy)
    repos: Callable[[], list[Path]] = field(
        default_factory=lambda: lambda: config.candidate_repos(Path.cwd(), Path(config.__file__))
    )
    mint: config.TokenMinter = config.mint_dev_token


@dataclass
class Session:
    """One invocation: the connection flags, resolved into a client on first use."""

    wiring: Wiring
    api: str | None
    token: str | None
    user: str | None
    _client: ApiClient | None = None
    _connection: config.Connection | None = None

    def connection(self) -> config.Connection:
        if self._connection is None:
            self._connection = config.resolve(
                api=self.api,
                token=self.token,
                user=self.user,
                repos=self.wiring.repos(),
                mint=self.wiring.mint,
            )
        return self._connection

    def client(self, out: Output) -> ApiClient:
        if self._client is None:
            connection = self.connection()
            if connection.dev_user is not None and self.user is None:
                out.note(
                    f"dev stack at {connection.base_url}, as user {connection.dev_user!r} "
                    "(--user or CREATIONS_USER picks another)"
                )
            self._client = ApiClient(
                connection.base_url, connection.token, transport=self.wiring.transport
            )
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    @contextmanager
    def run(self, out: Output) -> Iterator[None]:
        """Report a `CliError` in one message and exit with its code."""
        try:
            yield
        except CliError as error:
            if isinstance(error, ApiError):
                dev_user = self._connection.dev_user if self._connection else None
                error.hint = error.hint or api_error_hint(error, dev_user)
            out.error(error)
            raise typer.Exit(int(error.exit_code)) from None
        finally:
            self.close()


JsonFlag = Annotated[bool, typer.Option("--json", help="Print the API's JSON and nothing else.")]
FollowFlag = Annotated[
    bool, typer.Option("--follow", "-f", help="Show progress until the creation is final.")
]
IdArg = Annotated[str, typer.Argument(help="A creation id.", metavar="ID")]
WebhookOption = Annotated[
    str | None,
    typer.Option(help="POST signed events to this URL (https; docs/webhooks.md)."),
]
WebhookEvents = Annotated[
    list[str] | None,
    typer.Option(
        "--webhook-event",
        help="An event the webhook hears of: completed, failed, canceled or processing"
        " (repeat it; default: the first three).",
    ),
]


def webhook_of(url: str | None, events: list[str] | None) -> dict[str, Any] | None:
    """The body's `webhook`, or None; the API checks the URL and the events."""
    if url is None:
        if events:
            raise typer.BadParameter("--webhook-event needs --webhook")
        return None
    return {"url": url, **({"events": events} if events else {})}


EstimateFlag = Annotated[
    bool,
    typer.Option("--estimate", help="Print what it would cost and the balance; submit nothing."),
]


def refuse_with_estimate(follow_it: bool) -> None:
    if follow_it:
        raise typer.BadParameter("--estimate submits nothing, so there is nothing to --follow")


KeyOption = Annotated[
    str | None,
    typer.Option("--idempotency-key", help="Makes a retry of the same request safe."),
]


def build_app(wiring: Wiring | None = None) -> typer.Typer:
    wired = wiring or Wiring()
    app = typer.Typer(
        name="creations",
        help="Images, videos and reels from prompts, through the Creations HTTP API.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )

    @app.callback()
    def connect(
        ctx: typer.Context,
        api: Annotated[
            str | None,
            typer.Option(
                "--api", envvar="CREATIONS_API", help="The API's base URL (the submit function)."
            ),
        ] = None,
        token: Annotated[
            str | None,
            typer.Option("--token", envvar="CREATIONS_TOKEN", help="A Firebase ID token."),
        ] = None,
        user: Annotated[
            str | None,
            typer.Option(
                "--user",
                envvar="CREATIONS_USER",
                help="With `make dev` running: act as this uid (a dev token is minted).",
            ),
        ] = None,
    ) -> None:
        ctx.obj = Session(wired, api=api, token=token, user=user)

    def session(ctx: typer.Context) -> Session:
        value = ctx.obj
        assert isinstance(value, Session)  # noqa: S101 - set by the callback above
        return value

    def finish(out: Output, client: ApiClient, first: dict[str, Any], follow_it: bool) -> None:
        """Print `first` (a creation just answered), or follow it to the end and print that."""
        if not follow_it:
            if out.json_mode:
                out.json(first)
                return
            out.creation(first)
            if not is_final(first):
                out.note(f"follow it: creations show {first.get('id')} --follow")
            return
        final = follow_creation(out, client, first)
        if out.json_mode:
            out.json(final)
        else:
            out.creation(final)
            if final.get("status") == "draft":
                out.note(f"download: creations download {final.get('id')}")
        if final.get("status") != "draft":
            raise typer.Exit(int(Exit.NOT_DRAFT))

    def show_estimate(out: Output, answer: dict[str, Any]) -> None:
        if out.json_mode:
            out.json(answer)
        else:
            out.estimate(answer)

    def follow_creation(out: Output, client: ApiClient, first: dict[str, Any]) -> dict[str, Any]:
        creation_id = str(first.get("id"))
        resume = f"creations show {creation_id} --follow"
        last: dict[str, Any] = first
        try:
            with out.follow_bar(creation_id) as bar:

                def seen(creation: dict[str, Any]) -> None:
                    nonlocal last
                    last = creation
                    bar.update(creation)

                final: dict[str, Any] = follow(
                    lambda: client.get(creation_id), seen, wired.policy, first=first
                )
                return final
        except Unreachable as error:
            error.hint = f"{creation_id} goes on by itself; follow it again: {resume}"
            raise
        except KeyboardInterrupt:
            out.err.print(
                f"stopped following {creation_id} ({last.get('status')}, "
                f"{last.get('progress', 0)}%); it goes on by itself. "
                f"Follow it again: {resume}",
                markup=False,
            )
            raise typer.Exit(int(Exit.INTERRUPTED)) from None

    @app.command()
    def submit(
        ctx: typer.Context,
        kind: Annotated[Kind, typer.Argument(help="image or video", metavar="image|video")],
        prompt: Annotated[str, typer.Argument(help="What to make (1-2000 characters).")],
        aspect_ratio: Annotated[
            str | None, typer.Option(help="16:9, 9:16, 1:1, 4:3 or 3:4 (images only).")
        ] = None,
        count: Annotated[int | None, typer.Option(help="Images: how many (1-4).")] = None,
        duration: Annotated[
            int | None, typer.Option(help="Videos: seconds (4-8); sent as duration_seconds.")
        ] = None,
        model: Annotated[str | None, typer.Option(help="A model the deployment allows.")] = None,
        seed: Annotated[int | None, typer.Option(help="0-4294967295.")] = None,
        negative_prompt: Annotated[str | None, typer.Option(help="What to avoid.")] = None,
        image: Annotated[
            str | None, typer.Option(help="Videos: start from this image draft (its id).")
        ] = None,
        image_index: Annotated[
            int | None, typer.Option(help="Which image of a multi-image draft (from 0).")
        ] = None,
        webhook: WebhookOption = None,
        webhook_event: WebhookEvents = None,
        idempotency_key: KeyOption = None,
        estimate: EstimateFlag = False,
        follow_it: FollowFlag = False,
        json_mode: JsonFlag = False,
    ) -> None:
        """Submit an image or a video (debits its cost; --estimate: only say what it costs)."""
        out = Output(json_mode=json_mode)
        s = session(ctx)
        if estimate:
            refuse_with_estimate(follow_it)
        with s.run(out):
            body: dict[str, Any] = {"type": kind.value, "prompt": prompt}
            optional = {
                "aspect_ratio": aspect_ratio,
                "count": count,
                "duration_seconds": duration,
                "model": model,
                "seed": seed,
                "negative_prompt": negative_prompt,
                "image": check_creation_id(image) if image is not None else None,
                "image_index": image_index,
                "webhook": webhook_of(webhook, webhook_event),
            }
            body.update({name: value for name, value in optional.items() if value is not None})
            client = s.client(out)
            if estimate:
                show_estimate(out, client.estimate(body))
                return
            finish(out, client, client.submit(body, idempotency_key), follow_it)

    @app.command()
    def reel(
        ctx: typer.Context,
        clips: Annotated[
            list[str], typer.Argument(help="2-20 video draft ids, in order.", metavar="ID...")
        ],
        title: Annotated[str | None, typer.Option(help="The reel's title.")] = None,
        webhook: WebhookOption = None,
        webhook_event: WebhookEvents = None,
        idempotency_key: KeyOption = None,
        estimate: EstimateFlag = False,
        follow_it: FollowFlag = False,
        json_mode: JsonFlag = False,
    ) -> None:
        """Stitch video drafts into one reel (debits its cost; --estimate: only say what)."""
        out = Output(json_mode=json_mode)
        s = session(ctx)
        if estimate:
            refuse_with_estimate(follow_it)
        with s.run(out):
            body: dict[str, Any] = {"clips": [check_creation_id(clip) for clip in clips]}
            if title is not None:
                body["title"] = title
            hook = webhook_of(webhook, webhook_event)
            if hook is not None:
                body["webhook"] = hook
            client = s.client(out)
            if estimate:
                show_estimate(out, client.estimate_reel(body))
                return
            finish(out, client, client.create_reel(body, idempotency_key), follow_it)

    @app.command("list")
    def list_creations(
        ctx: typer.Context,
        status: Annotated[
            Status | None, typer.Option(help="Only creations in this status.")
        ] = None,
        limit: Annotated[
            int, typer.Option(min=1, help="How many to show, newest first (pages as needed).")
        ] = 20,
        json_mode: JsonFlag = False,
    ) -> None:
        """Your creations, newest first."""
        out = Output(json_mode=json_mode)
        s = session(ctx)
        with s.run(out):
            client = s.client(out)
            items: list[dict[str, Any]] = []
            cursor: str | None = None
            while True:
                page = client.list_page(
                    status=status.value if status else None,
                    limit=min(limit - len(items), LIST_PAGE_MAX),
                    cursor=cursor,
                )
                items.extend(page.get("items") or [])
                next_cursor = page.get("next_cursor")
                cursor = next_cursor if isinstance(next_cursor, str) else None
                if cursor is None or len(items) >= limit:
                    break
            if out.json_mode:
                out.json({"items": items, "next_cursor": cursor})
            else:
                out.creations(items, more=cursor is not None)

    @app.command()
    def show(
        ctx: typer.Context,
        creation_id: IdArg,
        follow_it: FollowFlag = False,
        json_mode: JsonFlag = False,
    ) -> None:
        """One creation (with --follow: until it is final)."""
        out = Output(json_mode=json_mode)
        s = session(ctx)
        with s.run(out):
            client = s.client(out)
            finish(out, client, client.get(creation_id), follow_it)

    @app.command()
    def download(
        ctx: typer.Context,
        creation_id: IdArg,
        output: Annotated[
            Path, typer.Option("--output", "-o", help="The folder to write to.", file_okay=False)
        ] = Path(),
        json_mode: JsonFlag = False,
    ) -> None:
        """Save a draft's media files (named <id>-<file>), checked against their sizes."""
        out = Output(json_mode=json_mode)
        s = session(ctx)
        with s.run(out):
            client = s.client(out)
            creation = client.get(creation_id)
            with out.download_bars() as bars:
                saved = download_media(client, creation, output, bars)
            if out.json_mode:
                out.json({"id": creation_id, "files": [f.to_json() for f in saved]})
            else:
                out.saved(saved)

    @app.command()
    def cancel(ctx: typer.Context, creation_id: IdArg, json_mode: JsonFlag = False) -> None:
        """Cancel a pending creation (its tokens come back)."""
        out = Output(json_mode=json_mode)
        s = session(ctx)
        with s.run(out):
            canceled = s.client(out).cancel(creation_id)
            if out.json_mode:
                out.json(canceled)
            else:
                out.creation(canceled)

    @app.command()
    def delete(
        ctx: typer.Context,
        creation_id: IdArg,
        yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask first.")] = False,
        json_mode: JsonFlag = False,
    ) -> None:
        """Delete a finished creation and its media."""
        out = Output(json_mode=json_mode)
        s = session(ctx)
        with s.run(out):
            check_creation_id(creation_id)
            if not yes and not typer.confirm(
                f"delete {creation_id} and its media?", default=False, err=True
            ):
                out.note("not deleted")
                raise typer.Exit(int(Exit.USAGE))
            s.client(out).delete(creation_id)
            if out.json_mode:
                out.json({"id": creation_id, "deleted": True})
            else:
                out.line(f"deleted {creation_id}")

    @app.command()
    def balance(ctx: typer.Context, json_mode: JsonFlag = False) -> None:
        """Your token balance."""
        out = Output(json_mode=json_mode)
        s = session(ctx)
        with s.run(out):
            answer = s.client(out).balance()
            if out.json_mode:
                out.json(answer)
            else:
                out.line(f"{answer.get('tokens')} tokens")

    @app.command()
    def pricing(ctx: typer.Context, json_mode: JsonFlag = False) -> None:
        """The deployment's prices: per image or per video second for each model, and a reel."""
        out = Output(json_mode=json_mode)
        s = session(ctx)
        with s.run(out):
            listed = s.client(out).pricing()
            if out.json_mode:
                out.json(listed)
            else:
                out.price_list(listed)

    return app
