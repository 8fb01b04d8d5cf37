"""Every alert Terraform makes is explained in the runbook, and every dead-letter-like
subscription has an alert: an operator paged at night finds what it means and what to do."""

from __future__ import annotations

import re

from tests.support.paths import REPO
from tests.support.terraform import Module

TERRAFORM_DIR = REPO / "terraform"
RUNBOOK = (TERRAFORM_DIR / "README.md").read_text()
# The alerts table of the runbook: its first column names each alert in bold.
ALERT_ROWS = re.findall(r"^\| \*\*(.+?)\*\*", RUNBOOK, re.MULTILINE)


def alert_names(module: Module) -> dict[str, str]:
    """Each alert policy's display name, without the `creations: ` prefix and any `${...}`."""
    names = {}
    for name, body in module.resources_of("google_monitoring_alert_policy").items():
        display = str(body["display_name"]).removeprefix("creations: ")
        names[name] = re.sub(r"\s*\$\{[^}]*\}", "", display).strip()
    return names


def test_every_alert_has_a_row_in_the_runbook() -> None:
    names = alert_names(Module.load(TERRAFORM_DIR))
    assert names, "terraform/monitoring.tf makes no alert policy"
    missing = {name: display for name, display in names.items() if display not in ALERT_ROWS}
    assert not missing, f"terraform/README.md's alerts table lacks {missing}"


def test_every_inspect_subscription_is_watched() -> None:
    """A pull subscription that keeps what was given up on (`*-inspect`) has an alert."""
    module = Module.load(TERRAFORM_DIR)
    inspect = {
        name
        for name, body in module.resources_of("google_pubsub_subscription").items()
        if str(body.get("name", "")).endswith("-inspect}") or "inspect" in name
    }
    watched = str(module.locals.get("dead_letter_subscriptions", {}))
    unwatched = {name for name in inspect if f"google_pubsub_subscription.{name}." not in watched}
    assert not unwatched, f"no alert watches {unwatched} (monitoring.tf dead_letter_subscriptions)"
