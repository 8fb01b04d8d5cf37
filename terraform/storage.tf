locals {
  media_bucket_name = coalesce(var.media_bucket_name, "${var.project_id}-creations-media")
}

# Generated media: media/{uid}/{creation}/... Private: clients get media through the app.
resource "google_storage_bucket" "media" {
  #checkov:skip=CKV_GCP_62:Access is recorded by Cloud Audit Logs (data access logs), not legacy bucket access logs.
  #checkov:skip=CKV_GCP_78:No versioning on purpose: deleting a creation must delete its media, not keep a noncurrent copy.
  project  = var.project_id
  name     = local.media_bucket_name
  location = var.region

  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  soft_delete_policy {
    retention_duration_seconds = var.media_soft_delete_retention_s
  }

  # Scratch data nobody cleans up (an interrupted job's leftovers).
  dynamic "lifecycle_rule" {
    for_each = length(var.media_abandoned_prefixes) == 0 ? [] : [1]
    content {
      condition {
        age            = var.media_abandoned_after_days
        matches_prefix = var.media_abandoned_prefixes
      }
      action {
        type = "Delete"
      }
    }
  }

  # Parts of multipart uploads that were never completed are billed until aborted.
  lifecycle_rule {
    condition {
      age = var.incomplete_upload_abort_days
    }
    action {
      type = "AbortIncompleteMultipartUpload"
    }
  }

  depends_on = [google_project_service.this]
}

# The functions' source zips, one object per content hash (written by the module instances).
resource "google_storage_bucket" "sources" {
  #checkov:skip=CKV_GCP_62:Access is recorded by Cloud Audit Logs (data access logs), not legacy bucket access logs.
  #checkov:skip=CKV_GCP_78:Objects are never overwritten (the name is the content hash), so versions would add nothing.
  project  = var.project_id
  name     = "${var.project_id}-creations-sources"
  location = var.region

  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  depends_on = [google_project_service.this]
}
