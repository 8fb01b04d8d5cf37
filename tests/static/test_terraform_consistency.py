"""The Terraform agrees with the code: what is deployed, how it is fed, what it is told.

Static: parses terraform/ with python-hcl2 and the functions' sources with `ast`; no provider,
no emulator, no network. (`terraform fmt` and checkov run in `make terraform-check`.)
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from shared.core.settings import Settings
from shared.creations.status_events import NEEDS_A_LOOK_FILTER, WEBHOOK_FILTER
from shared.intake.idempotency import EXPIRES_AT
from shared.media.storage import staging_prefix
from shared.store import paths
from tests.support.entry_points import EntryPoint, entry_points
from tests.support.paths import REPO
from tests.support.terraform import (
    EVENT_FUNCTION_DIR,
    TERRAFORM_DIR,
    Module,
    expression,
    parse,
    strings,
    tf_files,
)
from tools.build import function_folders
from tools.stack.chain import FUNCTIONS, default_wiring

FUNCTIONS_DIR = REPO / "functions"

# Settings fields production leaves to the code's default, and why.
LEFT_TO_DEFAULTS: dict[str, str] = {
    "auth_certs_url": "the default is Google's securetoken certificates, what production trusts",
    "auth_clock_skew_seconds": "a property of token checking, not of a deployment",
    "auth_certs_max_stale_seconds": "a property of token checking, not of a deployment",
    "max_body_bytes": "the contract's 64 KiB limit",
    "list_limit_default": "the API's documented page size",
    "list_limit_max": "the API's documented page size limit",
    "idempotency_ttl_hours": "48 h, as docs/contract.md promises; the TTL policy follows",
    "store_timeout_seconds": "tuned in code against the client libraries' retries",
    "publish_timeout_seconds": "tuned in code against the client libraries' retries",
    "media_timeout_seconds": "tuned in code against the storage client's retries",
    "media_url_ttl_seconds": "the 15 minutes the API documents for a download URL",
    "store_max_attempts": "tuned in code (optimistic rounds before 503 busy)",
    "busy_retry_after_seconds": "the Retry-After the API documents",
    "max_active_per_user": "a product rule docs/contract.md states (5 active per user)",
    "too_many_active_retry_after_seconds": "the Retry-After of too_many_active, docs/api.md",
    "submit_rate_per_minute": "a product rule docs/contract.md states (the submit rate)",
    "submit_burst": "a product rule docs/contract.md states (the submit burst)",
    "max_generation_attempts": "how often a job is retried before it fails: a product rule",
    "sweep_max_requeues": "how often the sweeper re-enqueues before it fails: a product rule",
    "sweep_pending_after_seconds": "a product rule of the sweeper, same everywhere",
    "sweep_refund_after_seconds": "a product rule of the sweeper, same everywhere",
    "sweep_batch_size": "bounded by the sweep function's timeout, set in code",
    "genai_poll_initial_seconds": "Veo polling cadence, tuned in code",
    "genai_poll_max_seconds": "Veo polling cadence, tuned in code",
    "genai_request_timeout_seconds": "bound on one model call, tuned in code",
    "webhook_timeout_seconds": "the 10 s per attempt docs/webhooks.md promises receivers",
    "webhook_retry_seconds": "the 24 h of retries docs/webhooks.md promises receivers",
}
# Settings that must never reach production: they point at local stand-ins.
LOCAL_ONLY: dict[str, str] = {
    "firestore_emulator_host": "the local Firestore emulator",
    "pubsub_emulator_host": "the local Pub/Sub emulator",
    "storage_emulator_host": "the local Cloud Storage emulator",
    "genai_base_url": "a local double of the Google AI APIs",
    "media_signing_key_file": "production signs media URLs through IAM signBlob, with no key",
    "offline_latency_seconds": "only read by PROVIDER=offline (synthetic media)",
    "offline_image_long_side_px": "only read by PROVIDER=offline (synthetic media)",
    "offline_video_long_side_px": "only read by PROVIDER=offline (synthetic media)",
    "offline_video_fps": "only read by PROVIDER=offline (synthetic media)",
    "webhook_allow_loopback": "lets webhooks go to http://127.0.0.1: the local stack's receivers",
}
# Secrets: set from Secret Manager, on these functions only (module instance names).
SECRETS: dict[str, set[str]] = {"genai_api_key": {"generate"}, "webhook_secret": {"webhooks"}}


def all_entry_points() -> list[EntryPoint]:
    return [
        ep for folder in function_folders(FUNCTIONS_DIR) for ep in entry_points(folder / "main.py")
    ]


@pytest.fixture(scope="module")
def root() -> Module:
    return Module.load(TERRAFORM_DIR)


@pytest.fixture(scope="module")
def event_function() -> Module:
    return Module.load(EVENT_FUNCTION_DIR)


def source_folder(instance: dict[str, Any]) -> str:
    """The functions/ folder a module instance deploys: `local.sources["<folder>"]`."""
    expr = expression(instance["source_archive"]) or ""
    match = re.fullmatch(r'local\.sources\["([a-z0-9_-]+)"\]', expr)
    assert match, f'source_archive should be local.sources["<folder>"], not {expr!r}'
    return match.group(1)


def deployed(root: Module) -> dict[tuple[str, str], str]:
    """(folder, entry point) -> the module instance that deploys it."""
    found: dict[tuple[str, str], str] = {}
    for name, instance in root.event_functions().items():
        key = (source_folder(instance), instance["entry_point"])
        assert key not in found, f"{key} is deployed twice: {found[key]} and {name}"
        found[key] = name
    return found


def topic_name(root: Module, value: str) -> Any:
    """A topic given as `google_pubsub_topic.X.id` or `.name`, as its name."""
    expr = expression(value) or ""
    match = re.fullmatch(r"google_pubsub_topic\.([a-z0-9_]+)\.(?:id|name)", expr)
    return root.resolve(f"${{google_pubsub_topic.{match.group(1)}.name}}") if match else value


def settings_default(field: str) -> Any:
    return Settings.model_fields[field].default


# --- files ------------------------------------------------------------------------------------


def test_every_terraform_file_parses() -> None:
    files = tf_files()
    assert len(files) >= 10, files
    for path in files:
        parsed = parse(path)
        assert parsed, f"{path} is empty"


def test_tfvars_example_sets_only_declared_variables(root: Module) -> None:
    example = parse(TERRAFORM_DIR / "terraform.tfvars.example")
    assert set(example) <= set(root.variables), set(example) - set(root.variables)
    required = {name for name, body in root.variables.items() if "default" not in body}
    assert required <= set(example), f"the example leaves out required {required - set(example)}"


def run_terraform(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip("terraform is not on PATH (make terraform-check needs it too)")
    env = {**os.environ, "TF_CLI_CONFIG_FILE": os.devnull, "TF_IN_AUTOMATION": "1"}
    return subprocess.run(
        [terraform, *args, "-no-color"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("var_args", [["-var-file=example.tfvars"], ["-var=project_id=p"]])
def test_variables_accept_the_example_and_their_defaults(
    tmp_path: Path, var_args: list[str]
) -> None:
    """Real Terraform checks types and validations of the variables (no provider needed:
    the copy holds only variables.tf), with the example tfvars and with the defaults."""
    shutil.copy(TERRAFORM_DIR / "variables.tf", tmp_path)
    shutil.copy(TERRAFORM_DIR / "terraform.tfvars.example", tmp_path / "example.tfvars")
    init = run_terraform(["init", "-backend=false", "-input=false"], tmp_path)
    assert init.returncode == 0, init.stdout + init.stderr
    plan = run_terraform(["plan", "-input=false", "-lock=false", *var_args], tmp_path)
    assert plan.returncode == 0, plan.stdout + plan.stderr


def test_references_point_at_declared_things(root: Module, event_function: Module) -> None:
    """A stand-in for `terraform validate`, which needs providers: every var., local.,
    module.X.Y and resource reference names something the module declares."""
    for module in (root, event_function):
        texts = [
            text
            for body in (
                module.resources,
                module.data,
                module.modules,
                module.locals,
                module.outputs,
            )
            for text in strings(list(body.values()))
        ]
        joined = "\n".join(texts)
        for name in re.findall(r"\bvar\.([a-z0-9_]+)", joined):
            assert name in module.variables, f"{module.directory}: var.{name} is not declared"
        for name in re.findall(r"\blocal\.([a-z0-9_]+)", joined):
            assert name in module.locals, f"{module.directory}: local.{name} is not declared"
        for kind, name in re.findall(r"(?<![\w.])data\.([a-z0-9_]+)\.([a-z0-9_]+)", joined):
            assert (kind, name) in module.data, f"{module.directory}: data.{kind}.{name}"
        for kind, name in re.findall(r"(?<![\w.])(google_[a-z0-9_]+)\.([a-z0-9_]+)", joined):
            assert (kind, name) in module.resources, f"{module.directory}: {kind}.{name}"
        for instance, output in re.findall(r"\bmodule\.([a-z0-9_]+)\.([a-z0-9_]+)", joined):
            assert instance in module.modules, f"module.{instance} is not declared"
            assert output in event_function.outputs, f"module.{instance}.{output}: no such output"


def test_module_instances_pass_declared_variables(root: Module, event_function: Module) -> None:
    meta = {"source", "depends_on", "count", "for_each", "providers"}
    required = {n for n, body in event_function.variables.items() if "default" not in body}
    for name, instance in root.event_functions().items():
        given = set(instance) - meta
        assert given <= set(event_function.variables), (name, given - set(event_function.variables))
        assert required <= given, f"module.{name} leaves out {required - given}"


def test_checkov_skips_are_justified() -> None:
    for path in tf_files():
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if "checkov:skip" not in line:
                continue
            match = re.search(r"#checkov:skip=(CKV2?_[A-Z]+_\d+):(.+)$", line.strip())
            assert match, f"{path}:{number}: a skip is #checkov:skip=CKV_...:<reason>"
            assert len(match.group(2).strip()) >= 20, f"{path}:{number}: say why"


# --- what is deployed -------------------------------------------------------------------------


def test_every_entry_point_is_deployed_once_with_its_trigger(root: Module) -> None:
    where = deployed(root)
    instances = root.event_functions()
    points = all_entry_points()
    assert points, "no entry points found under functions/"
    for point in points:
        key = (point.folder, point.target)
        assert key in where, (
            f"functions/{point.folder}/main.py:{point.target} is not deployed: add a module "
            f"instance to terraform/functions.tf (see terraform/README.md)"
        )
        instance = instances[where[key]]
        triggers = [t for t in ("pubsub_trigger", "firestore_trigger") if t in instance]
        if point.kind == "http":
            assert triggers == [], f"{point.target} is an HTTP function: no trigger"
        else:
            assert len(triggers) == 1, f"{point.target} takes events: one trigger, not {triggers}"


def test_every_deployed_function_exists_in_the_code(root: Module) -> None:
    points = {(p.folder, p.target) for p in all_entry_points()}
    for key, name in deployed(root).items():
        assert key in points, f"module.{name} deploys {key}, which functions/ does not define"


def test_deployed_functions_match_the_local_stack(root: Module) -> None:
    """The local stack's FUNCTIONS (what `make dev` runs) are the deployed ones."""
    where = deployed(root)
    local = {(Path(source).parent.name, target) for target, source in FUNCTIONS.values()}
    assert local == set(where), (
        f"local only: {local - set(where)}; Terraform only: {set(where) - local}"
    )


def test_only_the_http_api_is_public(root: Module) -> None:
    for name, instance in root.event_functions().items():
        public = instance.get("public") is True
        http = "pubsub_trigger" not in instance and "firestore_trigger" not in instance
        assert public == http, f"module.{name}: public={public}, http={http}"
        assert instance.get("ingress", "ALLOW_INTERNAL_ONLY") == (
            "ALLOW_ALL" if http else "ALLOW_INTERNAL_ONLY"
        )


# --- settings ---------------------------------------------------------------------------------


def test_every_settings_field_is_accounted_for() -> None:
    fields = set(Settings.model_fields)
    listed = [*LEFT_TO_DEFAULTS, *LOCAL_ONLY, *SECRETS]
    assert len(listed) == len(set(listed)), "a field is listed twice"
    stale = set(listed) - fields
    assert not stale, f"listed but not a Settings field any more: {stale}"


def function_env(root: Module, instance: dict[str, Any]) -> dict[str, Any]:
    env = root.resolve(instance.get("environment_variables", {}))
    assert isinstance(env, dict), f"environment_variables must resolve to a map, not {env!r}"
    return env


def test_functions_get_every_setting_production_needs(root: Module) -> None:
    fields = set(Settings.model_fields)
    needed = fields - set(LEFT_TO_DEFAULTS) - set(LOCAL_ONLY) - set(SECRETS)
    for name, instance in root.event_functions().items():
        env = function_env(root, instance)
        names = {key.lower() for key in env}
        assert not names - fields, (
            f"module.{name} sets what Settings does not read: {names - fields}"
        )
        assert needed <= names, f"module.{name} does not set {sorted(needed - names)}"
        assert not names & set(LOCAL_ONLY), (
            f"module.{name} sets local-only {names & set(LOCAL_ONLY)}"
        )
        assert not names & set(SECRETS), f"module.{name} sets a secret as a plain variable"


def test_secrets_come_from_secret_manager_only_where_needed(root: Module) -> None:
    for name, instance in root.event_functions().items():
        text = str(root.resolve(instance.get("secret_environment_variables", {})))
        for field, holders in SECRETS.items():
            assert (field.upper() in text) == (name in holders), (
                f"module.{name}: {field.upper()} from Secret Manager only on {sorted(holders)}"
            )


def test_topic_settings_name_the_deployed_topics(root: Module) -> None:
    topics = {body["name"] for body in root.resources_of("google_pubsub_topic").values()}
    for name, instance in root.event_functions().items():
        env = function_env(root, instance)
        for field in ("generate_topic", "stitch_topic", "dead_letter_topic", "sweep_topic"):
            value = env[field.upper()]
            assert value == settings_default(field), (
                f"module.{name}: {field.upper()}={value!r}; the code's default is "
                f"{settings_default(field)!r} (keep them equal so local and production agree)"
            )
            assert value in topics


def test_worker_deadlines_fit_the_function_timeout(root: Module) -> None:
    for name, instance in root.event_functions().items():
        if "pubsub_trigger" not in instance:
            continue
        timeout = root.resolve(instance["timeout_s"])
        env = function_env(root, instance)
        assert isinstance(timeout, int) and timeout <= 600, f"module.{name}: timeout {timeout}"
        if name in {"generate", "stitch"}:
            generation = env["GENERATION_TIMEOUT_SECONDS"]
            lease = env["LEASE_SECONDS"]
            assert generation < timeout <= lease, (
                f"module.{name}: a generation must give up before the function times out, and "
                f"its lease outlive the function ({generation} < {timeout} <= {lease})"
            )


# --- how functions are fed --------------------------------------------------------------------


def test_pubsub_and_firestore_feeds_match_the_local_stack(
    root: Module, monkeypatch: pytest.MonkeyPatch
) -> None:
    for field in Settings.model_fields:
        monkeypatch.delenv(field.upper(), raising=False)
    wiring = default_wiring(Settings())
    where = deployed(root)
    instances = root.event_functions()

    def instance_of(function: str) -> tuple[str, dict[str, Any]]:
        target, source = FUNCTIONS[function]
        name = where[(Path(source).parent.name, target)]
        return name, instances[name]

    fed_by_pubsub = set()
    for route in wiring.pushes:
        name, instance = instance_of(route.function)
        fed_by_pubsub.add(name)
        trigger = root.resolve(instance["pubsub_trigger"])
        assert trigger["topic"] == route.topic, (name, trigger["topic"], route.topic)
        assert trigger.get("subscription", f"{trigger['topic']}-push") == route.subscription
        dead_letter = trigger.get("dead_letter")
        assert (dead_letter or {}).get("topic") == route.dead_letter_topic, name
        if dead_letter:
            # The same expression (or the same literal): a tfvars override must move both.
            attempts = instance["pubsub_trigger"]["dead_letter"]["max_delivery_attempts"]
            env_attempts = root.locals["function_env"]["MAX_DELIVERY_ATTEMPTS"]
            assert (expression(attempts), attempts) == (expression(env_attempts), env_attempts), (
                f"module.{name}: the dead-letter policy's attempts ({attempts}) and "
                f"MAX_DELIVERY_ATTEMPTS ({env_attempts}) must be the same value"
            )
    pubsub_instances = {n for n, body in instances.items() if "pubsub_trigger" in body}
    assert pubsub_instances == fed_by_pubsub, "Pub/Sub-fed functions differ from the local stack"

    fed_by_firestore = set()
    for trigger_route in wiring.triggers:
        name, instance = instance_of(trigger_route.function)
        fed_by_firestore.add(name)
        trigger = root.resolve(instance["firestore_trigger"])
        assert trigger["event_type"] == trigger_route.trigger.event_type, name
        assert trigger["document"] == trigger_route.trigger.document, name
        assert trigger["database"] == trigger_route.trigger.database, name
        assert trigger["region"] == root.resolve("${var.firestore_location}")
    firestore_instances = {n for n, body in instances.items() if "firestore_trigger" in body}
    assert firestore_instances == fed_by_firestore


def test_scheduler_ticks_the_sweep_topic(root: Module) -> None:
    (job,) = root.resources_of("google_cloud_scheduler_job").values()
    (target,) = job["pubsub_target"]  # a block: python-hcl2 gives a list
    assert expression(target["topic_name"]) == "google_pubsub_topic.sweep.id"
    assert root.resolve("${google_pubsub_topic.sweep.name}") == settings_default("sweep_topic")
    assert target["data"], "Pub/Sub push needs a message body"


def test_every_dead_letter_topic_has_an_inspection_subscription(root: Module) -> None:
    dead_letter_topics = set()
    for instance in root.event_functions().values():
        trigger = root.resolve(instance.get("pubsub_trigger") or {})
        if trigger.get("dead_letter"):
            dead_letter_topics.add(trigger["dead_letter"]["topic"])
    assert dead_letter_topics, "the job topics dead-letter somewhere"
    pulls = [
        body
        for body in root.resources_of("google_pubsub_subscription").values()
        if "push_config" not in body
    ]
    inspected = {topic_name(root, body["topic"]) for body in pulls}
    assert dead_letter_topics <= inspected, dead_letter_topics - inspected


# --- media bucket ----------------------------------------------------------------------------


def test_what_providers_stage_outside_media_expires_by_lifecycle(root: Module) -> None:
    # A Veo operation may write after its creation failed or was deleted; only the bucket's
    # lifecycle rule removes that video, so the staging folder must be one of its prefixes.
    default = root.variables["media_abandoned_prefixes"]["default"]
    staged = staging_prefix("u", "c")
    assert any(staged.startswith(prefix) for prefix in default), (staged, default)
    assert not staged.startswith("media/")


@pytest.mark.parametrize("function", ["refund", "generate", "stitch", "sweep"])
def test_who_settles_media_may_list_and_delete_it(root: Module, function: str) -> None:
    # The refund trigger settles every final creation's media (shared/money/refunds.py), the
    # workers settle what they finished (shared/work/worker.py), and the sweeper finishes a
    # DELETE that stopped midway (shared/work/sweeper.py): all list the folder.
    grants = root.locals["media_grants"]
    grant = grants[f"{function}-remove"]
    assert grant["member"] == "${module." + function + ".service_account_member}"
    assert "media_remover" in grant["role"]


# --- Firestore --------------------------------------------------------------------------------


def test_idempotency_keys_expire_by_ttl(root: Module) -> None:
    ttl = [
        body
        for body in root.resources_of("google_firestore_field").values()
        if "ttl_config" in body
    ]
    # The field the code stamps every key with (shared/intake/idempotency.py) is the TTL field.
    assert [(b["collection"], b["field"]) for b in ttl] == [(paths.IDEMPOTENCY_KEYS, EXPIRES_AT)]


def test_security_rules_are_deployed_from_the_tested_file(root: Module) -> None:
    (ruleset,) = root.resources_of("google_firebaserules_ruleset").values()
    ((source,),) = [ruleset["source"]]
    ((file,),) = [source["files"]]
    content = file["content"]
    assert expression(content) == 'file("${path.module}/firestore.rules")'
    assert (TERRAFORM_DIR / "firestore.rules").is_file()
    (release,) = root.resources_of("google_firebaserules_release").values()
    assert release["name"] == "cloud.firestore"


def test_refund_is_woken_only_by_the_status_events_that_need_a_look(root: Module) -> None:
    trigger = root.resolve(root.event_functions()["refund"]["pubsub_trigger"])
    assert trigger["filter"] == NEEDS_A_LOOK_FILTER


def test_webhooks_hear_only_the_status_events_a_webhook_asked_for(root: Module) -> None:
    trigger = root.resolve(root.event_functions()["webhooks"]["pubsub_trigger"])
    assert trigger["filter"] == WEBHOOK_FILTER
    # Its own retry window (the handler's), not a dead-letter policy's attempt cap.
    assert "dead_letter" not in trigger
    assert (trigger["retry_minimum_backoff_s"], trigger["retry_maximum_backoff_s"]) == (10, 600)


def test_the_exhausted_webhooks_topic_is_deployed_with_a_subscription_an_operator_reads(
    root: Module,
) -> None:
    topics = {n: b["name"] for n, b in root.resources_of("google_pubsub_topic").items()}
    assert topics["webhooks_exhausted"] == settings_default("webhook_exhausted_topic")
    env = function_env(root, root.event_functions()["webhooks"])
    assert env["WEBHOOK_EXHAUSTED_TOPIC"] == settings_default("webhook_exhausted_topic")
    readers = [
        b
        for b in root.resources_of("google_pubsub_subscription").values()
        if expression(b["topic"]) == "google_pubsub_topic.webhooks_exhausted.id"
    ]
    assert len(readers) == 1 and "push_config" not in readers[0]
