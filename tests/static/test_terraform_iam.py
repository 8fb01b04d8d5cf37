"""Grants that reach beyond the suite's own service accounts are held to what they are for."""

from __future__ import annotations

import pytest

from shared.media.storage import staging_prefix
from tests.support.terraform import TERRAFORM_DIR, Module, expression

VERTEX_AGENT = "local.vertex_agent"


@pytest.fixture(scope="module")
def root() -> Module:
    return Module.load(TERRAFORM_DIR)


def test_the_vertex_ai_agent_writes_only_under_the_staging_prefix(root: Module) -> None:
    # The agent acts for every Vertex AI caller in the project: without a condition, any of
    # them could have Veo write (or overwrite) any object of the media bucket, published
    # media included.
    prefix = staging_prefix("u", "c").split("/", 1)[0] + "/"  # where Veo stages each video
    wanted = (
        'resource.name.startsWith("projects/_/buckets/'
        "${google_storage_bucket.media.name}/objects/" + prefix + '")'
    )
    grants = {
        name: body
        for kind in ("google_storage_bucket_iam_member", "google_storage_bucket_iam_binding")
        for name, body in root.resources_of(kind).items()
        if VERTEX_AGENT in str(body.get("member", body.get("members", "")))
    }
    assert grants, "the Vertex AI agent's grant on the media bucket is gone: update this test"
    for name, body in grants.items():
        conditions = body.get("condition") or []
        assert [c.get("expression") for c in conditions] == [wanted], (
            f"{name}: the Vertex AI agent's grant must be conditioned on {wanted}"
        )


def test_vertex_ai_use_is_granted_only_to_generate_and_only_in_vertex_mode(root: Module) -> None:
    holders = {
        name: instance.get("project_roles")
        for name, instance in root.event_functions().items()
        if "roles/aiplatform.user" in str(instance.get("project_roles"))
    }
    assert set(holders) == {"generate"}
    roles = expression(holders["generate"])
    assert roles is not None and 'local.calls_vertex_ai ? ["roles/aiplatform.user"]' in roles
    calls_vertex_ai = root.locals["calls_vertex_ai"]
    assert expression(calls_vertex_ai) == (
        'var.generation.provider == "genai" && var.generation.mode == "vertex"'
    )
