"""Where a webhook may be sent: the decision is made without sending anything (a stub
resolver stands for DNS; no test here opens a socket)."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import pytest

from shared.creations.model import Job
from shared.creations.status_events import StatusEvent
from shared.webhooks.model import WebhookBody, known_events, wanted_events, webhook_document
from shared.webhooks.targets import (
    UnsafeWebhookUrl,
    WebhookHostNotFound,
    address_refusal,
    check_target,
)


def resolving_to(*addresses: str):  # type: ignore[no-untyped-def]
    def resolve(host: str, port: int) -> Sequence[str]:
        return addresses

    return resolve


def not_resolving(host: str, port: int) -> Sequence[str]:
    raise OSError("Name or service not known")


PUBLIC = resolving_to("93.184.215.14")


def test_a_public_https_url_is_accepted_with_the_addresses_it_was_checked_at() -> None:
    target = check_target(
        "https://hooks.example.com:8443/in?token=x", resolver=PUBLIC, allow_loopback=False
    )
    assert (target.host, target.port, target.target) == ("hooks.example.com", 8443, "/in?token=x")
    assert target.addresses == (ipaddress.ip_address("93.184.215.14"),)


@pytest.mark.parametrize(
    ("url", "addresses", "why"),
    [
        ("http://hooks.example.com/", ("93.184.215.14",), "https"),
        ("ftp://hooks.example.com/", ("93.184.215.14",), "https"),
        ("https://user:pw@hooks.example.com/", ("93.184.215.14",), "credentials"),
        ("https://hooks.example.com/", ("10.1.2.3",), "private"),
        ("https://hooks.example.com/", ("93.184.215.14", "192.168.0.7"), "private"),
        ("https://hooks.example.com/", ("127.0.0.1",), "loopback"),
        ("https://hooks.example.com/", ("::1",), "loopback"),
        ("https://hooks.example.com/", ("169.254.169.254",), "metadata"),
        ("https://hooks.example.com/", ("169.254.1.1",), "link-local"),
        ("https://hooks.example.com/", ("fe80::1",), "link-local"),
        ("https://hooks.example.com/", ("fd00:ec2::254",), "metadata"),
        ("https://hooks.example.com/", ("::ffff:10.0.0.1",), "private"),
        ("https://hooks.example.com/", ("100.64.0.1",), "not public"),
        ("https://hooks.example.com/", ("0.0.0.0",), "unspecified"),  # noqa: S104
        ("https://hooks.example.com/", ("224.0.0.1",), "multicast"),
        ("https://metadata.google.internal/computeMetadata/v1/", ("93.184.215.14",), "metadata"),
        ("https://127.0.0.1/", (), "loopback"),
        ("https://[::1]:8443/", (), "loopback"),
        ("https://10.0.0.5/", (), "private"),
        ("https:///nohost", (), "no host"),
        ("https://hooks.example.com:99999/", (), "not a URL"),
        ("https://hooks.exa mple.com/", (), "spaces"),
    ],
)
def test_unsafe_urls_are_refused_with_the_reason(
    url: str, addresses: tuple[str, ...], why: str
) -> None:
    with pytest.raises(UnsafeWebhookUrl, match=why):
        check_target(url, resolver=resolving_to(*addresses), allow_loopback=False)


def test_a_host_that_does_not_resolve_is_its_own_refusal() -> None:
    with pytest.raises(WebhookHostNotFound, match="does not resolve"):
        check_target("https://nowhere.invalid/", resolver=not_resolving, allow_loopback=False)


def test_the_local_switch_allows_http_to_loopback_only() -> None:
    local = check_target("http://127.0.0.1:8099/hook", resolver=PUBLIC, allow_loopback=True)
    assert local.scheme == "http" and local.port == 8099
    by_name = check_target(
        "http://localhost:8099/", resolver=resolving_to("127.0.0.1", "::1"), allow_loopback=True
    )
    assert len(by_name.addresses) == 2
    with pytest.raises(UnsafeWebhookUrl, match="https"):
        check_target("http://hooks.example.com/", resolver=PUBLIC, allow_loopback=True)
    with pytest.raises(UnsafeWebhookUrl, match="private"):
        check_target("https://10.0.0.5/", resolver=PUBLIC, allow_loopback=True)
    with pytest.raises(UnsafeWebhookUrl, match="metadata"):
        check_target("http://169.254.169.254/", resolver=PUBLIC, allow_loopback=True)


def test_the_decision_function_names_each_kind_of_address() -> None:
    def refusal(text: str) -> str | None:
        return address_refusal(ipaddress.ip_address(text), allow_loopback=False)

    assert refusal("8.8.8.8") is None
    assert refusal("2001:4860:4860::8888") is None
    assert refusal("172.16.0.1") == "a private address"
    assert refusal("64:ff9b::a00:1") == "a private address"  # NAT64 of 10.0.0.1


def test_a_webhook_body_defaults_to_the_final_events_and_dedupes() -> None:
    assert WebhookBody(url="https://x.example/").events == ["completed", "failed", "canceled"]
    body = WebhookBody(url="https://x.example/", events=["processing", "processing", "failed"])
    assert webhook_document(body) == {
        "url": "https://x.example/",
        "events": ["processing", "failed"],
        "status": "pending",
        "attempts": 0,
    }


def test_odd_stored_events_are_dropped_not_refused() -> None:
    assert wanted_events({"events": ["failed", 3, "bogus", "failed"]}) == ("failed",)
    assert wanted_events("not a map") == ()
    assert known_events(None) == ()


def test_a_status_event_says_whether_the_webhook_wants_it() -> None:
    job = Job(creation_id="c1", user_id="u1", type="image", webhook_events=("completed",))
    draft = StatusEvent.of(job, "draft", attempt=1)
    assert draft.webhook and draft.attributes()["webhook"] == "1"
    failed = StatusEvent.of(job, "failed")
    assert not failed.webhook and "webhook" not in failed.attributes()
    assert not StatusEvent.of(job, "deleting").webhook
    processing = StatusEvent.of(
        job.model_copy(update={"webhook_events": ("processing",)}), "processing"
    )
    assert processing.webhook and processing.leaves_nothing_to_settle


def test_against_the_emulators_only_loopback_names_resolve() -> None:
    from shared.core.settings import Settings
    from shared.webhooks import loopback_only_resolver, system_resolver
    from shared.wiring import webhook_resolver

    local = Settings(firestore_emulator_host="127.0.0.1:8080")
    assert webhook_resolver(local) is loopback_only_resolver
    production = Settings(firestore_emulator_host=None, pubsub_emulator_host=None)
    assert webhook_resolver(production) is system_resolver
    with pytest.raises(WebhookHostNotFound):
        check_target(
            "https://hooks.example.com/", resolver=loopback_only_resolver, allow_loopback=True
        )
    assert check_target("http://localhost:9/", resolver=loopback_only_resolver, allow_loopback=True)
