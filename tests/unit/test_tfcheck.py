"""tools/tfcheck's checks, against a small hand-written schema (no download): each mistake is
caught with its file, block, argument and suggestion, and what Terraform accepts (dynamic
blocks, meta-arguments, module calls, references through indexes) is not flagged."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from tools.tfcheck import constraints
from tools.tfcheck.cache import FORMAT, load_schema, schema_path
from tools.tfcheck.check import check_tree
from tools.tfcheck.extract import _read_module
from tools.tfcheck.findings import Finding
from tools.tfcheck.pins import PINS
from tools.tfcheck.references import references
from tools.tfcheck.schema import BlockSchema, NestedBlock, ProviderSchema

FUNCTION = BlockSchema(
    arguments={"name": True, "location": True, "project": False, "labels": False},
    blocks={
        "service_config": NestedBlock(
            BlockSchema(
                {"service_account_email": False, "timeout_seconds": False},
                {
                    "secret_environment_variables": NestedBlock(
                        BlockSchema({"key": True, "secret": True, "version": True})
                    )
                },
            ),
            max_one=True,
        ),
        "event_trigger": NestedBlock(
            BlockSchema(
                {"event_type": False}, {"event_filters": NestedBlock(BlockSchema({"value": True}))}
            ),
            max_one=True,
        ),
    },
    readable=frozenset(
        {"name", "location", "project", "labels", "service_config", "event_trigger", "url"}
    ),
)
TOPIC = BlockSchema({"name": True, "project": False}, readable=frozenset({"name", "project", "id"}))
GOOGLE = ProviderSchema(
    source="registry.terraform.io/hashicorp/google",
    version="7.46.1",
    provider=BlockSchema({"project": False, "region": False}),
    resources={"google_cloudfunctions2_function": FUNCTION, "google_pubsub_topic": TOPIC},
    data_sources={
        "google_project": BlockSchema(
            {"project_id": False}, readable=frozenset({"project_id", "number"})
        )
    },
)
BETA = ProviderSchema(
    source="registry.terraform.io/hashicorp/google-beta",
    version="7.46.1",
    provider=BlockSchema({"project": False}),
    resources={"google_project_service_identity": BlockSchema({"service": True})},
    data_sources={},
)
SCHEMAS = {"hashicorp/google": GOOGLE, "hashicorp/google-beta": BETA}

VERSIONS = """
terraform {
  required_providers {
    google      = { source = "hashicorp/google", version = "~> 7.46" }
    google-beta = { source = "hashicorp/google-beta", version = "~> 7.46" }
  }
}
"""


def schemas(source: str) -> ProviderSchema | None:
    return SCHEMAS.get(source.removeprefix("registry.terraform.io/"))


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def findings(tmp_path: Path, main: str, **files: str) -> list[Finding]:
    root = write(tmp_path, {"versions.tf": VERSIONS, "main.tf": main, **files})
    return check_tree(root, schemas).findings


def rendered(found: list[Finding], root: Path) -> list[str]:
    return [f.render(root) for f in found]


def test_a_correct_module_has_no_findings(tmp_path: Path) -> None:
    main = """
    variable "project" {
      type = string
    }
    variable "secrets" {
      type    = map(string)
      default = {}
    }
    locals {
      region = "europe-west1"
    }
    data "google_project" "this" {}

    resource "google_pubsub_topic" "jobs" {
      for_each = toset(["a", "b"])
      name     = "jobs-${each.key}"
      project  = var.project
    }

    resource "google_cloudfunctions2_function" "fn" {
      count    = 1
      provider = google
      name     = google_pubsub_topic.jobs["a"].name
      location = local.region
      labels   = { number = data.google_project.this.number, role = "roles/run.invoker" }

      service_config {
        service_account_email = "a@b"
        dynamic "secret_environment_variables" {
          for_each = var.secrets
          content {
            key     = secret_environment_variables.key
            secret  = secret_environment_variables.value
            version = "latest"
          }
        }
      }

      dynamic "event_trigger" {
        for_each = []
        content {
          event_filters {
            value = "x"
          }
          event_filters {
            value = "y"
          }
        }
      }

      lifecycle {
        create_before_destroy = true
        ignore_changes        = [labels]
        precondition {
          condition     = var.project != ""
          error_message = "project is needed"
        }
      }
      depends_on = [google_pubsub_topic.jobs]
    }

    resource "google_project_service_identity" "pubsub" {
      provider = google-beta
      service  = "pubsub.googleapis.com"
    }

    resource "terraform_data" "settings" {
      input = { url = google_cloudfunctions2_function.fn[0].url }
      provisioner "local-exec" {
        command = "echo ${self.output.url}"
      }
    }

    module "child" {
      source   = "./child"
      for_each = toset(["x"])
      name     = each.key
    }

    output "child_url" {
      value       = module.child["x"].url
      description = "${path.module}: ${terraform.workspace}"
    }
    """
    child = """
    variable "name" {
      type = string
      validation {
        condition     = length(var.name) > 0
        error_message = "name is needed"
      }
    }
    variable "optional" {
      type    = string
      default = null
    }
    output "url" {
      value = "https://${var.name}.example.com"
    }
    """
    assert findings(tmp_path, main, **{"child/main.tf": child}) == []


@pytest.mark.parametrize(
    ("main", "expected"),
    [
        (
            """
            resource "google_cloudfunctions2_function" "fn" {
              name     = "f"
              location = "l"
              service_config {
                service_acount_email = "a@b"
              }
            }
            """,
            "main.tf:6: google_cloudfunctions2_function.fn: service_config.service_acount_email: "
            "no argument `service_acount_email` here (did you mean `service_account_email`?)",
        ),
        (
            """
            resource "google_cloudfunctions2_function" "fn" {
              name = "f"
            }
            """,
            "main.tf:2: google_cloudfunctions2_function.fn: "
            "the required argument `location` is missing",
        ),
        (
            """
            resource "google_cloudfunctions2_function" "fn" {
              name           = "f"
              location       = "l"
              service_config = { timeout_seconds = 60 }
            }
            """,
            "main.tf:5: google_cloudfunctions2_function.fn: service_config: `service_config` is a "
            "block, not an argument: write `service_config { ... }`",
        ),
        (
            """
            resource "google_cloudfunctions2_function" "fn" {
              name     = "f"
              location = "l"
              labels {
                a = "b"
              }
            }
            """,
            "main.tf:5: google_cloudfunctions2_function.fn: labels: `labels` is an argument, not "
            "a block: write `labels = ...`",
        ),
        (
            """
            resource "google_cloudfunctions2_function" "fn" {
              name     = "f"
              location = "l"
              service_config {}
              service_config {}
            }
            """,
            "main.tf:5: google_cloudfunctions2_function.fn: service_config: at most one "
            "`service_config` block is allowed, found 2",
        ),
        (
            """
            resource "google_pubsub_topics" "t" {
              name = "t"
            }
            """,
            "main.tf:2: google_pubsub_topics.t: no resource type `google_pubsub_topics` in "
            "registry.terraform.io/hashicorp/google 7.46.1 (did you mean `google_pubsub_topic`?)",
        ),
        (
            """
            resource "google_project_service_identity" "p" {
              service = "pubsub.googleapis.com"
            }
            """,
            "main.tf:2: google_project_service_identity.p: no resource type "
            "`google_project_service_identity` in registry.terraform.io/hashicorp/google 7.46.1 "
            "(it is in google-beta: set `provider = google-beta`)",
        ),
        (
            """
            resource "google_pubsub_topic" "t" {
              name = google_pubsub_topic.jobz.name
            }
            resource "google_pubsub_topic" "jobs" {
              name = "j"
            }
            """,
            "main.tf:3: google_pubsub_topic.t: `google_pubsub_topic.jobz.name`: no resource "
            "`google_pubsub_topic.jobz` is declared in this module (did you mean "
            "`google_pubsub_topic.jobs`?)",
        ),
        (
            """
            resource "google_pubsub_topic" "t" {
              name = "${google_pubsub_topic.t.nmae}-x"
            }
            """,
            "main.tf:3: google_pubsub_topic.t: `google_pubsub_topic.t.nmae`: `google_pubsub_topic` "
            "has no attribute `nmae` (did you mean `name`?)",
        ),
        (
            """
            resource "google_cloudfunctions2_function" "fn" {
              name     = "f"
              location = "l"
              dynamic "service_confg" {
                for_each = []
                content {}
              }
            }
            """,
            "main.tf:5: google_cloudfunctions2_function.fn: service_confg: no block "
            "`service_confg` here (did you mean `service_config`?)",
        ),
        (
            """
            resource "google_cloudfunctions2_function" "fn" {
              name     = "f"
              location = "l"
              service_config {
                dynamic "secret_environment_variables" {
                  for_each = {}
                  content {
                    key = "K"
                  }
                }
              }
            }
            """,
            "main.tf:6: google_cloudfunctions2_function.fn: "
            "service_config.secret_environment_variables: "
            "the required argument `secret` is missing",
        ),
        (
            """
            output "o" {
              value = var.regoin
            }
            variable "region" {}
            """,
            "main.tf:3: output.o: `var.regoin`: no variable `regoin` is declared (did you mean "
            "`region`?)",
        ),
        (
            """
            output "o" {
              value = [local.missing, data.google_project.that.number]
            }
            """,
            "main.tf:3: output.o: `local.missing`: no local `missing` is defined",
        ),
        (
            """
            output "o" {
              value = data.google_project.that.number
            }
            """,
            "main.tf:3: output.o: `data.google_project.that.number`: no data source "
            "`data.google_project.that` is declared in this module",
        ),
        (
            """
            resource "google_pubsub_topic" "t" {
              name = "t"
              lifecycle {
                create_before_destory = true
              }
            }
            """,
            "main.tf:5: google_pubsub_topic.t: lifecycle.create_before_destory: no argument "
            "`create_before_destory` here (did you mean `create_before_destroy`?)",
        ),
        (
            """
            provider "google" {
              regoin = "europe-west1"
            }
            """,
            "main.tf:3: provider google: regoin: "
            "no argument `regoin` here (did you mean `region`?)",
        ),
    ],
)
def test_each_mistake_is_named_with_its_place_and_a_suggestion(
    tmp_path: Path, main: str, expected: str
) -> None:
    assert expected in rendered(findings(tmp_path, main), tmp_path)


def test_module_calls_are_checked_against_the_modules_variables_and_outputs(tmp_path: Path) -> None:
    main = """
    module "fn" {
      source = "./child"
      nmae   = "x"
    }
    output "url" {
      value = module.fn.urll
    }
    output "other" {
      value = module.missing.url
    }
    """
    child = """
    variable "name" {
      type = string
    }
    output "url" {
      value = var.name
    }
    """
    found = rendered(findings(tmp_path, main, **{"child/main.tf": child}), tmp_path)
    assert "main.tf:2: module.fn: the module's required variable `name` is not set" in found
    assert any(
        line.startswith("main.tf:4: module.fn: nmae:")
        and "has no variable `nmae` (did you mean `name`?)" in line
        for line in found
    )
    assert (
        "main.tf:7: output.url: `module.fn.urll`: "
        "module `fn` has no output `urll` (did you mean `url`?)" in found
    )
    assert (
        "main.tf:10: output.other: `module.missing.url`: "
        "no module `missing` is called in this module" in found
    )


def test_the_called_module_is_checked_too(tmp_path: Path) -> None:
    main = """
    module "fn" {
      source = "./child"
    }
    """
    child = """
    resource "google_pubsub_topic" "t" {
      nam = "x"
    }
    """
    found = rendered(findings(tmp_path, main, **{"child/main.tf": child}), tmp_path)
    assert (
        "child/main.tf:2: google_pubsub_topic.t: the required argument `name` is missing" in found
    )
    assert (
        "child/main.tf:3: google_pubsub_topic.t: nam: no argument `nam` here (did you mean `name`?)"
        in found
    )


@pytest.mark.parametrize(
    ("constraint", "message"),
    [
        (
            ">= 6.0, < 8",
            "`>= 6.0, < 8` also admits 6.x, which tfcheck does not check (it checks 7.46.1): "
            "use `~> 7.46`",
        ),
        (">= 7.0", "`>= 7.0` also admits 8.x"),
        ("~> 6.50", "`~> 6.50` excludes 7.46.1"),
    ],
)
def test_a_provider_constraint_must_admit_the_checked_release_and_no_other_major(
    tmp_path: Path, constraint: str, message: str
) -> None:
    versions = f"""
    terraform {{
      required_providers {{
        google = {{ source = "hashicorp/google", version = "{constraint}" }}
      }}
    }}
    """
    root = write(tmp_path, {"versions.tf": versions})
    found = rendered(check_tree(root, schemas).findings, tmp_path)
    assert len(found) == 1
    assert found[0].startswith("versions.tf:4: terraform: required_providers.google: ")
    assert message in found[0]


def test_a_provider_without_a_pinned_schema_is_reported_not_skipped(tmp_path: Path) -> None:
    main = """
    resource "random_id" "r" {
      byte_length = 4
    }
    """
    found = rendered(findings(tmp_path, main), tmp_path)
    assert found == [
        "main.tf:2: random_id.r: no schema is pinned for provider `hashicorp/random` "
        "(tools/tfcheck/pins.py), so `random_id` cannot be checked"
    ]


@pytest.mark.parametrize(
    ("constraint", "version", "allowed"),
    [
        ("~> 7.46", "7.46.1", True),
        ("~> 7.46", "7.99.0", True),
        ("~> 7.46", "8.0.0", False),
        ("~> 7.46", "7.45.9", False),
        ("~> 7.46.1", "7.46.9", True),
        ("~> 7.46.1", "7.47.0", False),
        (">= 6.0, < 8", "6.1.0", True),
        (">= 6.0, < 8", "8.0.0", False),
        ("!= 7.46.1", "7.46.1", False),
        ("7.46.1", "7.46.1", True),
    ],
)
def test_version_constraints(constraint: str, version: str, allowed: bool) -> None:
    assert constraints.allows(constraint, version) is allowed


def test_references_skip_quoted_literals_but_read_templates_inside_them() -> None:
    value = {
        "a": '${contains(["roles/run.invoker", "local.not_a_ref"], var.x)'
        ' ? google_x.y[0].z : "${local.dir}/f"}',
        "b": "projects/${var.project}/topics/${module.m.topic} and data.not.a_ref",
        "c": "$${var.escaped}",
    }
    assert sorted(str(r) for r in references(value) if r.names) == [
        "google_x.y.z",
        "local.dir",
        "module.m.topic",
        "var.project",
        "var.x",
    ]


GENERATED_JS = """\
"use strict";
function widgetPartsToHclTerraform(struct) {
    const attrs = {
        size: {
            value: cdktn.numberToHclTerraform(struct.size),
            isBlock: false,
            type: "simple",
            storageClassType: "number",
        },
    };
}
exports.widgetPartsToHclTerraform = widgetPartsToHclTerraform;
class Widget extends cdktn.TerraformResource {
    static tfResourceType = "google_widget";
    get uid() {
        return this.getStringAttribute('uid');
    }
    _parts = new WidgetPartsList(this, "parts", false);
    synthesizeHclAttributes() {
        const attrs = {
            display_name: {
                value: cdktn.stringToHclTerraform(this._displayName),
                isBlock: false,
                type: "simple",
                storageClassType: "string",
            },
            parts: {
                value: cdktn.listMapperHcl(widgetPartsToHclTerraform, true)(this._parts.val),
                isBlock: true,
                type: "list",
                storageClassType: "WidgetPartsList",
            },
        };
    }
}
exports.Widget = Widget;
//# sourceMappingURL=data:application/json;base64,eyJ9
"""


def test_the_generated_bindings_give_names_blocks_and_readable_attributes() -> None:
    module = _read_module("widget", GENERATED_JS)
    assert (module.kind, module.class_name, module.type_name) == (
        "TerraformResource",
        "Widget",
        "google_widget",
    )
    assert [(e.name, e.prop, e.is_block, e.nested) for e in module.top] == [
        ("display_name", "displayName", False, None),
        ("parts", "parts", True, "widgetParts"),
    ]
    assert [(e.name, e.prop) for e in module.functions["widgetParts"]] == [("size", "size")]
    assert module.readable == {"uid", "parts"}


def test_the_schema_survives_its_json_form() -> None:
    again = ProviderSchema.from_json(GOOGLE.to_json())
    assert again == GOOGLE


def test_a_cached_schema_is_reused_only_for_the_pinned_wheel_and_format(tmp_path: Path) -> None:
    pin = PINS[0]
    path = schema_path(pin, tmp_path)
    google = ProviderSchema(
        GOOGLE.source, pin.provider_version, GOOGLE.provider, GOOGLE.resources, GOOGLE.data_sources
    )
    document = {"format": FORMAT, "wheel_sha256": pin.sha256, "schema": google.to_json()}
    path.write_text(json.dumps(document))
    assert load_schema(pin, tmp_path, say=print) == google  # no download: it would fail here
    for stale in ({"format": FORMAT - 1}, {"wheel_sha256": "0" * 64}):
        path.write_text(json.dumps({**document, **stale}))
        with pytest.raises(AssertionError, match="must not start processes"):
            load_schema(pin, tmp_path, say=print)  # rebuilt: pip would be started


def test_every_module_under_the_tree_is_checked_called_or_not(tmp_path: Path) -> None:
    example = """
    resource "google_pubsub_topic" "t" {
      nmae = "x"
    }
    """
    found = findings(tmp_path, "", **{"examples/minimal/main.tf": example})
    assert rendered(found, tmp_path) == [
        "examples/minimal/main.tf:2: google_pubsub_topic.t: "
        "the required argument `name` is missing",
        "examples/minimal/main.tf:3: google_pubsub_topic.t: nmae: no argument `nmae` here "
        "(did you mean `name`?)",
    ]


@pytest.mark.parametrize(("locked", "found"), [("7.50.0", 0), ("8.1.0", 1)])
def test_a_committed_lock_file_must_hold_the_checked_major(
    tmp_path: Path, locked: str, found: int
) -> None:
    lock = f"""
    # This file is maintained automatically by "terraform init".
    provider "registry.terraform.io/hashicorp/google" {{
      version     = "{locked}"
      constraints = "~> 7.46"
      hashes = [
        "h1:abc=",
      ]
    }}
    """
    result = rendered(findings(tmp_path, "", **{".terraform.lock.hcl": lock}), tmp_path)
    expected = (
        ".terraform.lock.hcl:4: provider registry.terraform.io/hashicorp/google: version: "
        "locks 8.1.0, not the major of 7.46.1 that tfcheck checks (tools/tfcheck/pins.py)"
    )
    assert result == [expected][:found]
