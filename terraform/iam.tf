# Who may do what, beyond each function's own identities (made by the module instances).
#
# Runtime service accounts (one per function, from modules/event_function):
#   submit       datastore.user; publish to the job topics and the status topic; list+delete
#                media (DELETE /v1/creations/{id})
#   generate     datastore.user; aiplatform.user (Vertex AI mode only); read+write media; list
#                (it settles what it finished: a draft keeps exactly its media set); publish
#                to the status topic
#   stitch       datastore.user; read+write media (reads the clips, writes the reel); list;
#                publish to the status topic
#   refund       datastore.user; list+delete media (a final creation's stray objects, and the
#                media of a creation whose DELETE stopped midway, which it then deletes)
#   dead-letter  datastore.user; publish to the status topic
#   sweep        datastore.user; publish to the job topics (re-enqueues stuck creations) and
#                the status topic; list+delete media (finishes a DELETE its status event did
#                not)
#   webhooks     datastore.user (reads a creation, writes its webhook record); read media (the
#                download URLs it signs must work); token creator on itself (signs them through
#                IAM signBlob); publish to the exhausted webhooks topic; read the webhook
#                signing secret (secrets.tf, through the module)
# Firestore access is project-wide (roles/datastore.user): Firestore IAM has no per-collection
# grants; what each function touches is decided by its code. Logs go to stdout, which Cloud Run
# collects without any role.

# The Pub/Sub and Vertex AI service agents (local.pubsub_agent, local.vertex_agent) come from
# service_agents.tf, which creates them.

# --- media bucket: only the object permissions each function uses ---------------------------

# Writing a creation's objects (each attempt writes its own names; delete removes the uploads
# of an attempt that lost its claim).
resource "google_project_iam_custom_role" "media_writer" {
  project     = var.project_id
  role_id     = "creationsMediaWriter"
  title       = "Creations media writer"
  description = "Create and replace objects (generated media)."
  permissions = ["storage.objects.create", "storage.objects.delete"]

  depends_on = [google_project_service.this]
}

# Reading objects by name (stitch reads clips; generate reads what Veo wrote).
resource "google_project_iam_custom_role" "media_reader" {
  project     = var.project_id
  role_id     = "creationsMediaReader"
  title       = "Creations media reader"
  description = "Read objects by name (no listing)."
  permissions = ["storage.objects.get"]

  depends_on = [google_project_service.this]
}

# Deleting a creation's media, and settling a final one's (refund, and the worker that finished
# it): list its prefix, delete.
resource "google_project_iam_custom_role" "media_remover" {
  project     = var.project_id
  role_id     = "creationsMediaRemover"
  title       = "Creations media remover"
  description = "List and delete objects (deleting a creation's media)."
  permissions = ["storage.objects.list", "storage.objects.delete"]

  depends_on = [google_project_service.this]
}

locals {
  media_grants = {
    "submit-remove"  = { role = google_project_iam_custom_role.media_remover.name, member = module.submit.service_account_member }
    "refund-remove"  = { role = google_project_iam_custom_role.media_remover.name, member = module.refund.service_account_member }
    "generate-write" = { role = google_project_iam_custom_role.media_writer.name, member = module.generate.service_account_member }
    "generate-read"  = { role = google_project_iam_custom_role.media_reader.name, member = module.generate.service_account_member }
    "stitch-write"   = { role = google_project_iam_custom_role.media_writer.name, member = module.stitch.service_account_member }
    "stitch-read"    = { role = google_project_iam_custom_role.media_reader.name, member = module.stitch.service_account_member }
    # The workers settle the creation they just finished (list its folder, delete strays).
    "generate-remove" = { role = google_project_iam_custom_role.media_remover.name, member = module.generate.service_account_member }
    "stitch-remove"   = { role = google_project_iam_custom_role.media_remover.name, member = module.stitch.service_account_member }
    # The sweeper finishes a DELETE that stopped midway and whose status event was lost.
    "sweep-remove" = { role = google_project_iam_custom_role.media_remover.name, member = module.sweep.service_account_member }
    # A webhook carries download URLs signed by the webhooks function's account: a V4 URL
    # works only if its signer may read the object.
    "webhooks-read" = { role = google_project_iam_custom_role.media_reader.name, member = module.webhooks.service_account_member }
  }
}

resource "google_storage_bucket_iam_member" "media" {
  for_each = local.media_grants

  bucket = google_storage_bucket.media.name
  role   = each.value.role
  member = each.value.member
}

# In vertex mode Veo writes each video straight into the media bucket, under tmp/ (the attempt's
# staging folder, tmp/{uid}/{creation}/...), as the Vertex AI service agent. The agent is shared
# by every Vertex AI caller in the project, so its grant is held to that prefix by an IAM
# condition on the object name (the bucket has uniform bucket-level access, which conditions
# need): the creations' published media under media/, and anything else, are out of its reach.
resource "google_storage_bucket_iam_member" "media_vertex_agent" {
  count = var.grant_vertex_agent_media_write && local.calls_vertex_ai ? 1 : 0

  bucket = google_storage_bucket.media.name
  role   = google_project_iam_custom_role.media_writer.name
  member = local.vertex_agent

  condition {
    title       = "veo-writes-staging-only"
    description = "Only objects under tmp/, where Veo stages each attempt's video."
    expression  = "resource.name.startsWith(\"projects/_/buckets/${google_storage_bucket.media.name}/objects/tmp/\")"
  }
}

# --- job topics: who may enqueue ------------------------------------------------------------

locals {
  job_publishers = {
    for pair in setproduct(["generate", "stitch"], ["submit", "sweep"]) :
    "${pair[0]}-${pair[1]}" => { topic = pair[0], function = pair[1] }
  }
  job_topics = {
    generate = google_pubsub_topic.generate.name
    stitch   = google_pubsub_topic.stitch.name
  }
  publisher_members = {
    submit = module.submit.service_account_member
    sweep  = module.sweep.service_account_member
  }
}

resource "google_pubsub_topic_iam_member" "job_publishers" {
  for_each = local.job_publishers

  project = var.project_id
  topic   = local.job_topics[each.value.topic]
  role    = "roles/pubsub.publisher"
  member  = local.publisher_members[each.value.function]
}

# --- the status stream: who announces status moves ------------------------------------------

# Whoever moves a creation to a final status announces it: submit (cancel, a job that could not
# be queued, a DELETE's mark), the workers (draft, failed), dead-letter and sweep (failed).
locals {
  status_announcers = {
    submit        = module.submit.service_account_member
    generate      = module.generate.service_account_member
    stitch        = module.stitch.service_account_member
    "dead-letter" = module.dead_letter.service_account_member
    sweep         = module.sweep.service_account_member
  }
}

resource "google_pubsub_topic_iam_member" "status_announcers" {
  for_each = local.status_announcers

  project = var.project_id
  topic   = google_pubsub_topic.status.name
  role    = "roles/pubsub.publisher"
  member  = each.value
}

# --- signed media URLs ---------------------------------------------------------------------

# submit signs the download URLs of media with its own service account, through IAM signBlob
# (shared/media/urls.py): no key file exists. The role is granted on that one account only.
resource "google_service_account_iam_member" "submit_signs_media_urls" {
  service_account_id = "projects/${var.project_id}/serviceAccounts/${module.submit.service_account_email}"
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = module.submit.service_account_member
}

# The webhooks function signs the media URLs its events carry in the same way, with its own
# account.
resource "google_service_account_iam_member" "webhooks_signs_media_urls" {
  service_account_id = "projects/${var.project_id}/serviceAccounts/${module.webhooks.service_account_email}"
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = module.webhooks.service_account_member
}

# --- given-up webhook events ---------------------------------------------------------------

resource "google_pubsub_topic_iam_member" "webhooks_exhausted_publisher" {
  project = var.project_id
  topic   = google_pubsub_topic.webhooks_exhausted.name
  role    = "roles/pubsub.publisher"
  member  = module.webhooks.service_account_member
}

# --- builds ---------------------------------------------------------------------------------

# Cloud Build runs the functions' builds as this account (not the Compute Engine default one,
# which new organizations leave without roles). roles/run.builder is the role Google documents
# for the build service account of functions ("can build Cloud Run functions and source
# deployed services"): it reads the uploaded source, writes logs and pushes the image.
resource "google_service_account" "build" {
  project      = var.project_id
  account_id   = "creations-build"
  display_name = "Builds of the creations functions"

  depends_on = [google_project_service.this]
}

resource "google_project_iam_member" "build" {
  project = var.project_id
  role    = "roles/run.builder"
  member  = google_service_account.build.member

  depends_on = [google_project_service.this]
}

# The functions' images. Old ones are cleaned up; the newest few stay for rollbacks.
resource "google_artifact_registry_repository" "functions" {
  #checkov:skip=CKV_GCP_84:Google-managed encryption: the images hold only our code and pinned public packages, no user data; a CMEK key would be one more thing the infra team must run for no gain.
  project       = var.project_id
  location      = var.region
  repository_id = "creations-functions"
  format        = "DOCKER"
  description   = "Images of the creations functions (built by Cloud Functions)."

  cleanup_policy_dry_run = false

  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = 10
    }
  }

  cleanup_policies {
    id     = "delete-old"
    action = "DELETE"
    condition {
      older_than = "2592000s" # 30 days
    }
  }

  depends_on = [google_project_service.this]
}
