"""The drafts page (web/) in a real browser: Debian's Chromium, headless, driven by Playwright.

One whole local stack serves the module (every function its own process, as in
test_stack_faults.py), with the Pub/Sub emulator behind a `FaultProxy` so the queue can be
taken down; the Firestore emulator enforces terraform/firestore.rules for the stack's project,
and `tools.stack.web` serves the built page (`make web`) with the API relayed same-origin, as
`make dev` does. The page listens to Firestore as its uid through the Web SDK, exactly as it
would in production (with Firebase Auth instead of the emulator's mock token).

The screenshot test writes docs/images/drafts.png, the picture the README shows.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect, sync_playwright

from shared.core.clients import storage_client
from tests.support.faultproxy import FaultProxy
from tests.support.paths import REPO
from tests.support.stack import RunningStack, start_stack
from tools.stack.devauth import DevSigner
from tools.stack.emulators import EmulatorSet
from tools.stack.waiting import wait_until
from tools.stack.web import DevSite, WebServer, load_rules

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
# Headless flags tried on this image: no sandbox (root in CI), no GPU, nothing phoning home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT = REPO / "docs" / "images" / "drafts.png"
# Jobs take a few seconds, so the page is seen `processing` with its bar moving.
STACK_ENV = {"OFFLINE_LATENCY_SECONDS": "3", "PUBLISH_TIMEOUT_SECONDS": "3"}
SECONDS = 1000  # Playwright counts milliseconds
SETTLE = 60 * SECONDS


@dataclass
class Site:
    running: RunningStack
    pubsub: FaultProxy
    url: str

    def user(self, name: str, tokens: int, *, exact: bool = False) -> str:
        """A fresh uid granted `tokens`: `name` and a suffix unique to the run, or `name` itself
        with `exact` (the stack's project is new for each run)."""
        uid = name if exact else f"{name}-{uuid.uuid4().hex[:6]}"
        self.running.ledger.grant(uid, tokens)
        return uid

    def open(self, context: BrowserContext, uid: str) -> Page:
        page = context.new_page()
        page.goto(f"{self.url}/?uid={uid}")
        expect(page.locator("#user")).to_have_text(uid)
        expect(page.locator("#drafts-loading")).to_be_hidden(timeout=20 * SECONDS)
        return page

    def post(self, uid: str, path: str, body: dict[str, Any]) -> requests.Response:
        return requests.post(
            f"{self.running.stack.url('submit')}{path}",
            json=body,
            headers=self.running.headers(uid),
            timeout=30,
        )

    @contextlib.contextmanager
    def queue_down(self) -> Iterator[None]:
        """Pub/Sub unreachable for the stack inside the block; on leaving it, waits until a
        submit is queued again (the publisher's channel reconnects with a backoff, so the first
        publishes after the outage may still fail)."""
        self.pubsub.set_mode("down")
        try:
            yield
        finally:
            self.pubsub.set_mode("pass")
        probe = self.user("queue-probe", tokens=100)

        def accepted() -> bool:
            answer = self.post(probe, "/v1/creations", {"type": "image", "prompt": "queue back?"})
            return answer.status_code == 202

        wait_until(accepted, 90, "the queue taking work again", interval=0.5)

    def media_objects(self, uid: str, creation_id: str) -> list[str]:
        bucket = storage_client(self.running.settings).bucket(self.running.settings.media_bucket)
        return [blob.name for blob in bucket.list_blobs(prefix=f"media/{uid}/{creation_id}/")]

    def wait_gone(self, uid: str, creation_id: str) -> None:
        """The document and every stored object of the creation are gone. The page hides an
        item from the `deleting` mark on (as the API does), a moment before the DELETE ends."""
        wait_until(
            lambda: (
                self.running.doc(creation_id) == {} and self.media_objects(uid, creation_id) == []
            ),
            30,
            f"{creation_id} deleted with its media",
        )


@pytest.fixture(scope="module")
def site(
    emulators: EmulatorSet,
    base_env: dict[str, str],
    signer: DevSigner,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Site]:
    pubsub = FaultProxy(emulators.pubsub.port)
    pubsub.start()
    running: RunningStack | None = None
    server: WebServer | None = None
    try:
        running = start_stack(
            emulators,
            base_env,
            signer,
            tmp_path_factory.mktemp("drafts-page"),
            STACK_ENV,
            hosts={"PUBSUB_EMULATOR_HOST": pubsub.host},
        )
        firestore_host = emulators.env()["FIRESTORE_EMULATOR_HOST"]
        load_rules(firestore_host, running.settings.gcp_project)
        server = WebServer(
            DevSite(
                api_url=running.stack.url("submit"),
                firestore_host=firestore_host,
                project=running.settings.gcp_project,
                signer=signer,
            )
        )
        server.start()
        yield Site(running, pubsub, server.url)
    finally:
        pubsub.set_mode("pass")
        if server is not None:
            server.stop()
        if running is not None:
            running.assert_ledgers_balance()
            running.stack.stop()
        pubsub.stop()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: apt-get install chromium"
        if os.environ.get("CI"):  # .ci/run installs it: missing there is a broken CI
            pytest.fail(message)
        pytest.skip(message)
    # Playwright's 5 s default is short for a whole stack on a loaded 2-core machine; the
    # waits that follow real work (a job, a refund) say SETTLE themselves.
    expect.set_options(timeout=30 * SECONDS)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def context(chromium: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile for one test (no cache or storage shared between tests); an
    uncaught error in the page's script fails the test."""
    fresh = chromium.new_context(viewport={"width": 1000, "height": 900})
    uncaught: list[str] = []
    fresh.on("weberror", lambda error: uncaught.append(str(error.error)))
    yield fresh
    fresh.close()
    assert uncaught == [], f"the page threw: {uncaught}"


def item_of(page: Page, creation_id: str) -> Locator:
    return page.locator(f'#drafts li[data-id="{creation_id}"]')


def wait_for_preview(page: Page, creation_id: str) -> None:
    """The item's image has loaded: fetched from its signed URL and decoded."""
    page.wait_for_function(
        """id => {
            const img = document.querySelector(`#drafts li[data-id="${id}"] .preview img`);
            return img !== null && img.complete && img.naturalWidth > 0;
        }""",
        arg=creation_id,
        timeout=SETTLE,
    )


def announced(page: Page) -> list[str]:
    texts: list[str] = page.locator("#activity li").all_inner_texts()
    return texts


def focused_delete_button_of(page: Page) -> str | None:
    found: str | None = page.evaluate(
        """() => {
            const active = document.activeElement;
            return active?.classList.contains("delete") ? active.closest("li").dataset.id : null;
        }"""
    )
    return found


# --- 1. an image, from the form to its preview ------------------------------------------------


def test_an_image_goes_from_pending_through_processing_to_a_loaded_preview(
    site: Site, context: BrowserContext
) -> None:
    uid = site.user("ada", tokens=10)
    page = site.open(context, uid)
    expect(page.locator("#balance")).to_have_text("10")
    expect(page.locator("#drafts-empty")).to_be_visible()

    page.fill("#prompt", "a lighthouse at dawn")
    page.fill("#count", "2")
    expect(page.locator("#cost")).to_have_text("Costs 2 tokens; you have 10.")
    page.click("#submit")

    item = page.locator("#drafts li.creation")
    expect(item).to_have_count(1)
    expect(item).to_have_attribute("data-status", "processing", timeout=SETTLE)
    # The bar is there and moving while the job works (the offline provider reports progress).
    page.wait_for_function(
        """() => {
            const bar = document.querySelector('#drafts li[data-status="processing"] progress');
            return bar !== null && bar.value > 0;
        }""",
        timeout=SETTLE,
    )
    expect(item).to_have_attribute("data-status", "draft", timeout=SETTLE)
    creation_id = item.get_attribute("data-id")
    assert creation_id is not None
    wait_for_preview(page, creation_id)
    expect(page.locator("#balance")).to_have_text("8")
    expect(item.locator(".badge")).to_have_text("draft")

    # Each status was announced to screen readers, in order.
    said = [line.rsplit(": ", 1)[-1] for line in announced(page)]
    assert [s for s in said if s in ("pending", "processing", "draft")] == [
        "pending",
        "processing",
        "draft",
    ], said
    assert site.running.doc(creation_id)["status"] == "draft"


def test_a_partial_draft_says_what_was_made_and_refunded(
    site: Site, context: BrowserContext
) -> None:
    uid = site.user("pia", tokens=10)
    page = site.open(context, uid)
    page.fill("#prompt", "four koi [withhold:1]")
    page.fill("#count", "4")
    page.click("#submit")
    item = page.locator("#drafts li.creation")
    expect(item).to_have_attribute("data-status", "draft", timeout=SETTLE)
    expect(item.locator(".partial")).to_have_text("3 of 4 made, 1 token refunded")
    expect(item.locator(".partial")).to_have_attribute(
        "title", "1 image withheld by the offline provider's safety filter ([withhold:1])."
    )
    expect(page.locator("#balance")).to_have_text("7")
    creation_id = item.get_attribute("data-id")
    assert creation_id is not None
    wait_for_preview(page, creation_id)
    assert len(site.running.doc(creation_id)["media"]) == 3


def test_the_form_shows_the_deployments_prices(site: Site, context: BrowserContext) -> None:
    # GIVEN a price list no deployment defaults to, answered in place of the API's (the page
    # has no prices of its own: every number it shows must come from this list)
    uid = site.user("ida", tokens=10)
    listed = requests.get(
        f"{site.running.stack.url('submit')}/v1/pricing",
        headers=site.running.headers(uid),
        timeout=30,
    ).json()
    for model in listed["models"]:
        model["unit_tokens"] = 3 if model["type"] == "image" else 2
    context.route("**/v1/pricing", lambda route: route.fulfill(json=listed))
    page = site.open(context, uid)
    # WHEN an image and then a video are priced in the form
    page.fill("#prompt", "a lighthouse at dawn")
    page.fill("#count", "3")
    # THEN the costs are the list's
    expect(page.locator("#cost")).to_have_text("Costs 9 tokens; you have 10.")
    page.check("input[name=type][value=video]")
    page.fill("#duration", "4")
    expect(page.locator("#cost")).to_have_text("Costs 8 tokens; you have 10.")
    page.fill("#duration", "6")
    expect(page.locator("#cost")).to_have_text("Costs 12 tokens; you have 10: 2 more needed.")


# --- 2. the old system's test plan: the queue down ----------------------------------------------


def test_with_the_queue_down_a_video_fails_refunded_and_is_deleted_through_the_modal(
    site: Site, context: BrowserContext
) -> None:
    uid = site.user("grace", tokens=20)
    page = site.open(context, uid)
    expect(page.locator("#balance")).to_have_text("20")

    page.check("input[name=type][value=video]")
    page.fill("#prompt", "waves on a pebble beach")
    page.fill("#duration", "6")
    expect(page.locator("#cost")).to_have_text("Costs 6 tokens; you have 20.")
    with site.queue_down():
        page.click("#submit")
        result = page.locator("#create-result")
        expect(result).to_contain_text("503", timeout=SETTLE)
    expect(result).to_contain_text("refunded")
    expect(result).to_contain_text("could not be queued")

    item = page.locator("#drafts li.creation")
    expect(item).to_have_count(1)
    expect(item).to_have_attribute("data-status", "failed", timeout=SETTLE)
    expect(item.locator(".refunded")).to_be_visible(timeout=SETTLE)
    expect(item.locator(".error")).not_to_be_empty()
    expect(page.locator("#balance")).to_have_text("20")
    creation_id = item.get_attribute("data-id")
    assert creation_id is not None
    assert site.running.doc(creation_id)["error"]["code"] == "queue_unavailable"

    item.locator("button.delete").click()
    expect(page.locator("#confirm-delete")).to_be_visible()
    page.click("#confirm-delete-confirm")
    expect(item).to_have_count(0, timeout=SETTLE)
    expect(page.locator("#drafts-empty")).to_be_visible()
    site.wait_gone(uid, creation_id)
    expect(page.locator("#balance")).to_have_text("20")


# --- 3. the confirmation modal ------------------------------------------------------------------


def test_the_delete_modal_deletes_only_on_confirm_and_gives_focus_back(
    site: Site, context: BrowserContext
) -> None:
    uid = site.user("hedy", tokens=5)
    creation_id = site.running.submit(uid, {"type": "image", "prompt": "a paper boat"})["id"]
    page = site.open(context, uid)
    item = item_of(page, creation_id)
    expect(item).to_have_attribute("data-status", "draft", timeout=SETTLE)
    dialog = page.locator("#confirm-delete")
    delete = item.locator("button.delete")

    delete.click()
    expect(dialog).to_be_visible()
    expect(dialog).to_have_attribute("open", "")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert focused_delete_button_of(page) == creation_id

    delete.click()
    expect(dialog).to_be_visible()
    page.click("#confirm-delete-cancel")
    expect(dialog).to_be_hidden()
    assert focused_delete_button_of(page) == creation_id

    expect(item).to_have_count(1)
    assert site.running.doc(creation_id)["status"] == "draft"
    assert site.media_objects(uid, creation_id) != []

    delete.click()
    page.click("#confirm-delete-confirm")
    expect(item).to_have_count(0, timeout=SETTLE)
    site.wait_gone(uid, creation_id)
    # The button went with its item: focus stays in the list, not lost to <body>.
    expect(page.locator("#drafts-heading")).to_be_focused()


# --- a video from an image draft --------------------------------------------------------------


def test_a_video_starts_from_an_image_draft_chosen_in_the_form(
    site: Site, context: BrowserContext
) -> None:
    uid = site.user("lin", tokens=20)
    image = site.running.submit(uid, {"type": "image", "prompt": "a red door", "count": 2})
    page = site.open(context, uid)
    expect(item_of(page, image["id"])).to_have_attribute("data-status", "draft", timeout=SETTLE)

    page.check("input[name=type][value=video]")
    expect(page.locator("#source-field")).to_be_visible()
    page.select_option("#source-image", label="a red door (2 of 2)")
    page.fill("#prompt", "the door opens")
    page.fill("#duration", "4")
    expect(page.locator("#cost")).to_have_text("Costs 4 tokens; you have 18.")
    page.click("#submit")
    expect(page.locator("#create-result")).to_contain_text("Submitted", timeout=SETTLE)

    video = page.locator('#drafts li[data-type="video"]')
    expect(video).to_have_count(1)
    video_id = video.get_attribute("data-id")
    assert video_id is not None
    source = site.running.doc(video_id)["request"]["source_image"]
    assert (source["creation_id"], source["index"]) == (image["id"], 1)
    expect(video).to_have_attribute("data-status", "draft", timeout=SETTLE)


# --- cancel, while nothing can take the job up ------------------------------------------------


def test_a_pending_creation_is_canceled_from_the_page_and_refunded(
    site: Site, context: BrowserContext
) -> None:
    uid = site.user("kay", tokens=10)
    page = site.open(context, uid)
    # generate down: Pub/Sub's pushes fail and are retried, so the creation stays `pending`.
    site.running.stack.kill("generate")
    try:
        wait_until(
            lambda: site.running.stack.processes["generate"].poll() is not None, 10, "generate dead"
        )
        page.fill("#prompt", "a kite that never flies")
        page.click("#submit")
        item = page.locator("#drafts li.creation")
        expect(item).to_have_attribute("data-status", "pending", timeout=SETTLE)
        expect(page.locator("#balance")).to_have_text("9")
        item.locator("button.cancel").click()
        expect(item).to_have_attribute("data-status", "canceled", timeout=SETTLE)
    finally:
        site.running.stack.restart("generate")
    expect(item.locator(".refunded")).to_be_visible()
    expect(item.locator("button.cancel")).to_have_count(0)
    expect(item.locator("button.delete")).to_be_visible()
    expect(page.locator("#balance")).to_have_text("10")
    creation_id = item.get_attribute("data-id")
    assert creation_id is not None
    assert site.running.doc(creation_id)["status"] == "canceled"


# --- 4. the security rules, for a real web client ---------------------------------------------

RULES_PROBE = """async () => {
    const { db, uid, firestore: f } = window.draftsDev;
    const outcome = async (attempt) => {
        try { await attempt(); return "allowed"; } catch (error) { return error.code; }
    };
    const creations = f.collection(db, "creations");
    return {
        "query without the owner filter": await outcome(() => f.getDocs(creations)),
        "query of another user's": await outcome(
            () => f.getDocs(f.query(creations, f.where("user_id", "==", "%(other)s")))),
        "read of another user's balance": await outcome(
            () => f.getDoc(f.doc(db, "users", "%(other)s"))),
        "write to creations": await outcome(
            () => f.setDoc(f.doc(creations, "forged"), { user_id: uid, status: "draft" })),
        "write to users": await outcome(
            () => f.updateDoc(f.doc(db, "users", uid), { tokens: 1000000 })),
        "write to the ledger": await outcome(
            () => f.addDoc(f.collection(db, "users", uid, "ledger"), { kind: "grant", amount: 9 })),
        "own query": await outcome(
            () => f.getDocs(f.query(creations, f.where("user_id", "==", uid)))),
    };
}"""


def test_the_rules_hold_for_the_page(site: Site, context: BrowserContext) -> None:
    ann, bob = site.user("ann", tokens=5), site.user("bob", tokens=5)
    ann_id = site.running.submit(ann, {"type": "image", "prompt": "ann's own"})["id"]
    bob_id = site.running.submit(bob, {"type": "image", "prompt": "bob's, not ann's"})["id"]
    page = site.open(context, ann)
    expect(item_of(page, ann_id)).to_have_count(1)
    expect(item_of(page, ann_id)).to_have_attribute("data-status", "draft", timeout=SETTLE)
    site.running.wait(bob_id, lambda c: c.get("status") == "draft", "bob's draft")

    shown = page.locator("#drafts li.creation").evaluate_all(
        "items => items.map(i => i.dataset.id)"
    )
    assert shown == [ann_id]
    assert "bob's" not in page.locator("#drafts").inner_text()

    got = page.evaluate(RULES_PROBE.replace("%(other)s", bob))
    assert got == {
        "query without the owner filter": "permission-denied",
        "query of another user's": "permission-denied",
        "read of another user's balance": "permission-denied",
        "write to creations": "permission-denied",
        "write to users": "permission-denied",
        "write to the ledger": "permission-denied",
        "own query": "allowed",
    }
    # Nothing the page tried landed.
    assert site.running.doc("forged") == {}
    expect(page.locator("#balance")).to_have_text("4")
    assert site.running.ledger.balance(ann) == 4


# --- 5. what it looks like ----------------------------------------------------------------------


def test_a_screenshot_of_the_drafts_list(site: Site, context: BrowserContext) -> None:
    uid = site.user("alice", tokens=30, exact=True)
    draft_id = site.running.submit(uid, {"type": "image", "prompt": "a fox in the snow"})["id"]
    site.running.wait(draft_id, lambda c: c.get("status") == "draft", "the draft")
    with site.queue_down():
        answer = site.post(
            uid, "/v1/creations", {"type": "video", "prompt": "city lights at night"}
        )
    assert answer.status_code == 503, answer.text
    assert answer.json()["error"]["code"] == "queue_unavailable"

    page = site.open(context, uid)
    wait_for_preview(page, draft_id)
    failed = page.locator('#drafts li[data-status="failed"]')
    expect(failed.locator(".refunded")).to_be_visible(timeout=SETTLE)

    page.check("input[name=type][value=video]")
    page.fill("#prompt", "a paper plane over the hills")
    page.fill("#duration", "4")
    page.click("#submit")
    page.wait_for_function(
        """() => {
            const bar = document.querySelector('#drafts li[data-status="processing"] progress');
            return bar !== null && bar.value > 0;
        }""",
        timeout=SETTLE,
    )
    statuses = page.locator("#drafts li.creation").evaluate_all(
        "items => items.map(i => i.dataset.status)"
    )
    assert statuses == ["processing", "failed", "draft"]

    shot = page.screenshot(full_page=True)
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    partial = SCREENSHOT.with_suffix(".png.tmp")
    partial.write_bytes(shot)
    shutil.move(partial, SCREENSHOT)
    assert SCREENSHOT.stat().st_size > 10_000
    # Leave nothing running: the next module's stack must not inherit a job.
    processing_id = page.locator('#drafts li[data-status="processing"]').get_attribute("data-id")
    assert processing_id is not None
    site.running.wait(processing_id, lambda c: c.get("status") == "draft", "the video")
