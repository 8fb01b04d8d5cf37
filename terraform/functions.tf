# The functions: one module instance each. Sources come from `make build` (dist/manifest.json
# maps each folder under functions/ to its zip); adding a function is one more instance here,
# plus its grants in iam.tf.

locals {
  dist_dir = coalesce(var.dist_dir, "${path.module}/../dist")
  build    = jsondecode(file("${local.dist_dir}/manifest.json"))
  # Folder under functions/ -> the source_archive of the module instances that deploy it.
  sources = {
    for folder, built in local.build : folder => {
      bucket       = google_storage_bucket.sources.name
      path         = "${local.dist_dir}/${built.zip}"
      content_hash = built.content_hash
    }
  }

  build_settings = {
    service_account_email = google_service_account.build.email
    docker_repository     = google_artifact_registry_repository.functions.id
  }

  # Workers (generate, stitch) get the longest run a push delivery allows, less a margin; the
  # code's own deadlines sit inside it: a generation gives up at GENERATION_TIMEOUT_SECONDS,
  # and its claim's lease (LEASE_SECONDS) outlives the whole run.
  worker_timeout_s     = 540
  generation_timeout_s = 480
  lease_s              = 540

  # Every function reads the same settings (shared/core/settings.py); env var = field name in
  # upper case. Fields left out keep the code's default, which is the production value
  # (tests/static/test_terraform_consistency.py lists each one and why).
  function_env = {
    GCP_PROJECT                = var.project_id
    MEDIA_BUCKET               = google_storage_bucket.media.name
    GENERATE_TOPIC             = google_pubsub_topic.generate.name
    STITCH_TOPIC               = google_pubsub_topic.stitch.name
    DEAD_LETTER_TOPIC          = google_pubsub_topic.dead_letter.name
    SWEEP_TOPIC                = google_pubsub_topic.sweep.name
    STATUS_TOPIC               = google_pubsub_topic.status.name
    WEBHOOK_EXHAUSTED_TOPIC    = google_pubsub_topic.webhooks_exhausted.name
    PRICING                    = jsonencode(var.pricing)
    ALLOWED_MODELS             = jsonencode(var.allowed_models)
    DEFAULT_IMAGE_MODEL        = var.default_image_model
    DEFAULT_VIDEO_MODEL        = var.default_video_model
    PROVIDER                   = var.generation.provider
    GENAI_MODE                 = var.generation.mode
    GENAI_LOCATION             = var.generation.location
    MAX_DELIVERY_ATTEMPTS      = var.max_delivery_attempts
    GENERATION_TIMEOUT_SECONDS = local.generation_timeout_s
    LEASE_SECONDS              = local.lease_s
    LOG_LEVEL                  = var.log_level
  }

  # generate calls Vertex AI as its own service account.
  calls_vertex_ai = var.generation.provider == "genai" && var.generation.mode == "vertex"

  # Only in developer mode, and only for the function that calls the models. (A filter, not a
  # conditional: the two branches of `? :` would be objects of different types.)
  genai_secret_env = {
    for name, secret in {
      GENAI_API_KEY = { secret = google_secret_manager_secret.genai_api_key.secret_id }
    } : name => secret if var.generation.mode == "developer"
  }

  # The webhook signing secret, once a version of it exists: a revision naming a secret with
  # no version fails to deploy, and Terraform never writes the value. Until then the webhooks
  # function runs without it, logs an ERROR for each event and leaves the event to be retried
  # (messages are kept 7 days), so adding the version and applying again loses nothing.
  webhook_secret_env = {
    for name, secret in {
      WEBHOOK_SECRET = { secret = google_secret_manager_secret.webhook_signing.secret_id }
    } : name => secret if var.webhook_secret_has_version
  }

  # How many requests run at once: max_instances x max_instance_request_concurrency, and the
  # concurrency is 1 everywhere (the module's default, as Cloud Functions' own): a request never
  # shares its instance's vCPU or its Python GIL with another, so a CPU-bound job (generate
  # drawing or waiting on a model, stitch running ffmpeg) takes the same time under a burst as
  # alone, and a burst scales out to max_instances instead. `make dev` mirrors this with
  # gunicorn worker processes per function (tools/stack/chain.py CONCURRENCY, overridable by
  # <FUNCTION>_WORKERS / <FUNCTION>_THREADS; see docs/local-stack.md): one process there
  # stands for one instance here. Locally generate and stitch get 2 processes because the
  # Pub/Sub emulator pushes at most 2 messages at a time per subscription, where production's
  # push delivery grows to what max_instances allows.
  scaling_defaults = {
    submit        = { min_instances = 0, max_instances = 20, available_memory_mb = 512, available_cpu = null }
    generate      = { min_instances = 0, max_instances = 10, available_memory_mb = 1024, available_cpu = "1" }
    stitch        = { min_instances = 0, max_instances = 5, available_memory_mb = 2048, available_cpu = "1" }
    refund        = { min_instances = 0, max_instances = 10, available_memory_mb = 256, available_cpu = null }
    "dead-letter" = { min_instances = 0, max_instances = 5, available_memory_mb = 256, available_cpu = null }
    sweep         = { min_instances = 0, max_instances = 1, available_memory_mb = 256, available_cpu = null }
    webhooks      = { min_instances = 0, max_instances = 10, available_memory_mb = 256, available_cpu = null }
  }
  scaling = {
    for name, defaults in local.scaling_defaults : name => merge(
      defaults,
      try({ for key, value in var.scaling[name] : key => value if value != null }, {}),
    )
  }
}

# The functions refuse to start with settings the code rejects (shared/core/settings.py); catch the
# ones Terraform can see at plan time instead.
resource "terraform_data" "function_settings" {
  input = local.function_env

  lifecycle {
    precondition {
      condition     = lookup(var.allowed_models, var.default_image_model, "") == "image"
      error_message = "default_image_model must be one of allowed_models, making images."
    }
    precondition {
      condition     = lookup(var.allowed_models, var.default_video_model, "") == "video"
      error_message = "default_video_model must be one of allowed_models, making videos."
    }
    precondition {
      condition     = local.generation_timeout_s < local.worker_timeout_s && local.worker_timeout_s <= local.lease_s
      error_message = "A generation must give up before its function times out, and its lease outlive the function."
    }
  }
}

# HTTP API. Public at the network and IAM level on purpose: its callers are browsers and apps
# holding Firebase ID tokens, which Cloud Run IAM cannot check (it accepts only Google-signed
# tokens of principals granted run.invoker). The code verifies the Firebase token on every
# request (shared/intake/auth.py: signature, issuer, audience = project, expiry) and answers 401
# otherwise; nothing is served without it.
module "submit" {
  #checkov:skip=CKV_GCP_124:The public HTTP API: reachable from anywhere by design; every request must carry a valid Firebase ID token (see above).
  source = "./modules/event_function"

  pubsub_service_agent = local.pubsub_agent

  project_id     = var.project_id
  region         = var.region
  name           = "submit"
  description    = "The creations HTTP API."
  entry_point    = "submit"
  source_archive = local.sources["submit"]
  build          = local.build_settings

  min_instances       = local.scaling["submit"].min_instances
  max_instances       = local.scaling["submit"].max_instances
  available_memory_mb = local.scaling["submit"].available_memory_mb
  available_cpu       = local.scaling["submit"].available_cpu
  timeout_s           = 60

  ingress = "ALLOW_ALL"
  public  = true

  environment_variables = local.function_env
  project_roles         = ["roles/datastore.user"]
  labels                = var.labels

  depends_on = [google_project_service.this]
}

# Makes the media of image and video creations, one job message at a time.
module "generate" {
  source = "./modules/event_function"

  pubsub_service_agent = local.pubsub_agent

  project_id     = var.project_id
  region         = var.region
  name           = "generate"
  description    = "Makes the media of one image or video creation per job."
  entry_point    = "generate"
  source_archive = local.sources["generate"]
  build          = local.build_settings

  min_instances       = local.scaling["generate"].min_instances
  max_instances       = local.scaling["generate"].max_instances
  available_memory_mb = local.scaling["generate"].available_memory_mb
  available_cpu       = local.scaling["generate"].available_cpu
  timeout_s           = local.worker_timeout_s
  # One job per instance (see scaling_defaults): a second would halve the first one's CPU.
  max_instance_request_concurrency = 1

  environment_variables        = local.function_env
  secret_environment_variables = local.genai_secret_env
  # roles/aiplatform.user only when generate calls Vertex AI (developer mode uses the API key,
  # offline mode calls nothing). It is project-wide because Google's models (Imagen, Veo,
  # Gemini) are publisher models: they have no IAM policy of their own, and a prediction on
  # projects/<p>/locations/<l>/publishers/google/models/<m> is authorised on the project.
  # It is the role Google documents for calling them; a custom role with only the predict
  # permissions would be narrower, but would have to follow every permission the SDK's calls
  # (Veo's long-running operations included) come to need.
  project_roles = concat(
    ["roles/datastore.user"],
    local.calls_vertex_ai ? ["roles/aiplatform.user"] : [],
  )
  labels = var.labels

  pubsub_trigger = {
    topic = google_pubsub_topic.generate.name
    dead_letter = {
      topic                 = google_pubsub_topic.dead_letter.name
      max_delivery_attempts = var.max_delivery_attempts
    }
  }

  depends_on = [google_project_service.this, google_pubsub_topic_iam_member.dead_letter_publisher]
}

# Joins a reel's video drafts into one video, one job message at a time.
module "stitch" {
  source = "./modules/event_function"

  pubsub_service_agent = local.pubsub_agent

  project_id     = var.project_id
  region         = var.region
  name           = "stitch"
  description    = "Stitches the clips of one reel per job."
  entry_point    = "stitch"
  source_archive = local.sources["stitch"]
  build          = local.build_settings

  min_instances       = local.scaling["stitch"].min_instances
  max_instances       = local.scaling["stitch"].max_instances
  available_memory_mb = local.scaling["stitch"].available_memory_mb
  available_cpu       = local.scaling["stitch"].available_cpu
  timeout_s           = local.worker_timeout_s
  # One job per instance (see scaling_defaults): a second would halve the first one's CPU.
  max_instance_request_concurrency = 1

  environment_variables = local.function_env
  project_roles         = ["roles/datastore.user"]
  labels                = var.labels

  pubsub_trigger = {
    topic = google_pubsub_topic.stitch.name
    dead_letter = {
      topic                 = google_pubsub_topic.dead_letter.name
      max_delivery_attempts = var.max_delivery_attempts
    }
  }

  depends_on = [google_project_service.this, google_pubsub_topic_iam_member.dead_letter_publisher]
}

# Refunds a creation once it is failed or canceled, settles final creations' media and finishes
# deletes: fed by the creation status stream, so it runs once per final move, not on every
# update of every creation.
module "refund" {
  source = "./modules/event_function"

  pubsub_service_agent = local.pubsub_agent

  project_id     = var.project_id
  region         = var.region
  name           = "refund"
  description    = "Refunds failed and canceled creations exactly once; settles final creations' media and finishes deletes."
  entry_point    = "refund"
  source_archive = local.sources["refund"]
  build          = local.build_settings

  min_instances       = local.scaling["refund"].min_instances
  max_instances       = local.scaling["refund"].max_instances
  available_memory_mb = local.scaling["refund"].available_memory_mb
  available_cpu       = local.scaling["refund"].available_cpu
  # A settle (or a delete it finishes) after the refund makes a few Cloud Storage calls, each
  # bounded by MEDIA_TIMEOUT_SECONDS.
  timeout_s = 180

  environment_variables = local.function_env
  project_roles         = ["roles/datastore.user"]
  labels                = var.labels

  # No dead letter: what still fails here after a week of retries is caught by the sweeper,
  # which refunds failed and canceled creations left unrefunded and finishes stopped deletes.
  pubsub_trigger = {
    topic = google_pubsub_topic.status.name
    # Only events that need a look: a first attempt's image or reel draft owes no refund and
    # left nothing to settle, so it never wakes refund (the happy path is two invocations).
    # The same rule as shared/creations/status_events.py NEEDS_A_LOOK_FILTER (a static test
    # holds them equal). Other consumers of the stream take every event.
    filter = "NOT attributes.status = \"processing\" AND NOT (attributes.status = \"draft\" AND attributes.attempt = \"1\" AND NOT attributes.type = \"video\")"
  }

  depends_on = [google_project_service.this]
}

# Fails (and so refunds) the creation of every job that ended on the dead-letter topic.
module "dead_letter" {
  source = "./modules/event_function"

  pubsub_service_agent = local.pubsub_agent

  project_id     = var.project_id
  region         = var.region
  name           = "dead-letter"
  description    = "Fails the creations of dead-lettered jobs."
  entry_point    = "dead_letter"
  source_archive = local.sources["dead_letter"]
  build          = local.build_settings

  min_instances       = local.scaling["dead-letter"].min_instances
  max_instances       = local.scaling["dead-letter"].max_instances
  available_memory_mb = local.scaling["dead-letter"].available_memory_mb
  available_cpu       = local.scaling["dead-letter"].available_cpu
  timeout_s           = 60

  environment_variables = local.function_env
  project_roles         = ["roles/datastore.user"]
  labels                = var.labels

  # No dead letter of its own: what still fails here after a week of retries is caught by the
  # sweeper, which fails and refunds creations stuck in pending/processing.
  pubsub_trigger = {
    topic = google_pubsub_topic.dead_letter.name
  }

  depends_on = [google_project_service.this]
}

# Moves stuck creations on; fed by Cloud Scheduler through the sweep topic.
module "sweep" {
  source = "./modules/event_function"

  pubsub_service_agent = local.pubsub_agent

  project_id     = var.project_id
  region         = var.region
  name           = "sweep"
  description    = "Re-enqueues stuck creations and refunds missed ones."
  entry_point    = "sweep"
  source_archive = local.sources["sweep"]
  build          = local.build_settings

  min_instances       = local.scaling["sweep"].min_instances
  max_instances       = local.scaling["sweep"].max_instances
  available_memory_mb = local.scaling["sweep"].available_memory_mb
  available_cpu       = local.scaling["sweep"].available_cpu
  timeout_s           = 300

  environment_variables = local.function_env
  project_roles         = ["roles/datastore.user"]
  labels                = var.labels

  # A missed tick is made up by the next one: old ticks are not worth keeping or retrying long.
  pubsub_trigger = {
    topic                   = google_pubsub_topic.sweep.name
    message_retention_s     = 600
    retry_maximum_backoff_s = 60
  }

  depends_on = [google_project_service.this]
}

# Signs and POSTs the status events a creation's webhook asks for (shared/webhooks/delivery.py),
# fed by a subscription of its own to the status stream that lets through only those.
module "webhooks" {
  source = "./modules/event_function"

  pubsub_service_agent = local.pubsub_agent

  project_id     = var.project_id
  region         = var.region
  name           = "webhooks"
  description    = "Signs and sends creations' webhook events, retried for 24 hours."
  entry_point    = "webhooks"
  source_archive = local.sources["webhooks"]
  build          = local.build_settings

  min_instances       = local.scaling["webhooks"].min_instances
  max_instances       = local.scaling["webhooks"].max_instances
  available_memory_mb = local.scaling["webhooks"].available_memory_mb
  available_cpu       = local.scaling["webhooks"].available_cpu
  # One attempt waits WEBHOOK_TIMEOUT_SECONDS (10) for the receiver, beside a few Firestore
  # calls and the signing of media URLs.
  timeout_s = 60

  environment_variables = local.function_env
  # The signing secret, readable by this function's service account alone (secrets.tf), once
  # it has a version (webhook_secret_has_version).
  secret_environment_variables = local.webhook_secret_env
  project_roles                = ["roles/datastore.user"]
  labels                       = var.labels

  # No Pub/Sub dead-letter policy, on purpose: its cap of 100 delivery attempts at the 600 s
  # maximum backoff is under 17 hours, short of the 24 hours of retries docs/webhooks.md
  # promises. Instead the messages are kept 7 days (the default retention) and the handler
  # itself gives an event up once WEBHOOK_RETRY_SECONDS (24 h) have passed since its first
  # attempt: the record says `exhausted` and the event is published to the exhausted topic
  # (pubsub.tf), where an operator reads and can replay it.
  pubsub_trigger = {
    topic        = google_pubsub_topic.status.name
    subscription = "creations-status-webhooks-push" # a second subscription to the topic: a name of its own
    # Only the events a creation's webhook asks for: the same rule as
    # shared/creations/status_events.py WEBHOOK_FILTER (a static test holds them equal).
    filter                  = "attributes.webhook = \"1\""
    retry_minimum_backoff_s = 10
    retry_maximum_backoff_s = 600
  }

  depends_on = [google_project_service.this]
}
