resource "google_firestore_database" "default" {
  project     = var.project_id
  name        = "(default)"
  location_id = var.firestore_location
  type        = "FIRESTORE_NATIVE"

  # The code never uses transactions (it guards writes with preconditions), so optimistic
  # concurrency costs nothing and keeps readers from ever holding locks.
  concurrency_mode                  = "OPTIMISTIC"
  app_engine_integration_mode       = "DISABLED"
  point_in_time_recovery_enablement = "POINT_IN_TIME_RECOVERY_ENABLED"
  delete_protection_state           = var.firestore_delete_protection ? "DELETE_PROTECTION_ENABLED" : "DELETE_PROTECTION_DISABLED"
  deletion_policy                   = "ABANDON"

  depends_on = [google_project_service.this]
}

# --- composite indexes ----------------------------------------------------------------------
# One per query the code runs, as declared in shared/store/indexes.py (tests/static checks both agree
# and that the code's queries are the declared ones). Firestore appends __name__ itself; it is
# written out where the code orders by it.

# CreationStore.list_for_user: a user's creations, newest first.
resource "google_firestore_index" "creations_by_user" {
  project    = var.project_id
  database   = google_firestore_database.default.name
  collection = "creations"

  fields {
    field_path = "user_id"
    order      = "ASCENDING"
  }
  fields {
    field_path = "created_at"
    order      = "DESCENDING"
  }
  fields {
    field_path = "__name__"
    order      = "DESCENDING"
  }
}

# The submit's active count (shared.intake.limits): a user's creations by status, from the
# first status after `failed` (pending, processing), at most MAX_ACTIVE_PER_USER of them.
resource "google_firestore_index" "creations_by_user_by_status" {
  project    = var.project_id
  database   = google_firestore_database.default.name
  collection = "creations"

  fields {
    field_path = "user_id"
    order      = "ASCENDING"
  }
  fields {
    field_path = "status"
    order      = "ASCENDING"
  }
  fields {
    field_path = "__name__"
    order      = "ASCENDING"
  }
}

# CreationStore.list_for_user with ?status=: a user's creations in one status, newest first.
resource "google_firestore_index" "creations_by_user_status" {
  project    = var.project_id
  database   = google_firestore_database.default.name
  collection = "creations"

  fields {
    field_path = "user_id"
    order      = "ASCENDING"
  }
  fields {
    field_path = "status"
    order      = "ASCENDING"
  }
  fields {
    field_path = "created_at"
    order      = "DESCENDING"
  }
  fields {
    field_path = "__name__"
    order      = "DESCENDING"
  }
}

# Sweeper: creations `pending` since before a cutoff, oldest first.
resource "google_firestore_index" "creations_by_status_updated" {
  project    = var.project_id
  database   = google_firestore_database.default.name
  collection = "creations"

  fields {
    field_path = "status"
    order      = "ASCENDING"
  }
  fields {
    field_path = "updated_at"
    order      = "ASCENDING"
  }
  fields {
    field_path = "__name__"
    order      = "ASCENDING"
  }
}

# Sweeper: creations `processing` whose lease has expired, oldest lease first.
resource "google_firestore_index" "creations_by_status_lease" {
  project    = var.project_id
  database   = google_firestore_database.default.name
  collection = "creations"

  fields {
    field_path = "status"
    order      = "ASCENDING"
  }
  fields {
    field_path = "lease_expires_at"
    order      = "ASCENDING"
  }
  fields {
    field_path = "__name__"
    order      = "ASCENDING"
  }
}

# Sweeper: `failed`/`canceled` creations not yet refunded, oldest first.
resource "google_firestore_index" "creations_unrefunded" {
  project    = var.project_id
  database   = google_firestore_database.default.name
  collection = "creations"

  fields {
    field_path = "status"
    order      = "ASCENDING"
  }
  fields {
    field_path = "refunded"
    order      = "ASCENDING"
  }
  fields {
    field_path = "updated_at"
    order      = "ASCENDING"
  }
  fields {
    field_path = "__name__"
    order      = "ASCENDING"
  }
}

# --- TTL ------------------------------------------------------------------------------------

# Idempotency records delete themselves once `expires_at` (IDEMPOTENCY_TTL_HOURS after the
# request) has passed; Firestore deletes within about a day after that, and the code already
# ignores an expired record it still finds. The field is not queried, so it is not indexed
# (an index on a TTL timestamp only adds write cost and hotspots).
resource "google_firestore_field" "idempotency_ttl" {
  project    = var.project_id
  database   = google_firestore_database.default.name
  collection = "idempotency_keys"
  field      = "expires_at"

  ttl_config {}
  index_config {}
}

# --- security rules -------------------------------------------------------------------------

# Clients read their own documents and write none (firestore.rules; tests in
# tests/integration/test_firestore_rules.py run them on the emulator). The functions use the
# server client library, which IAM governs and rules do not apply to.
resource "google_firebaserules_ruleset" "firestore" {
  project = var.project_id

  source {
    files {
      name    = "firestore.rules"
      content = file("${path.module}/firestore.rules")
    }
  }

  lifecycle {
    create_before_destroy = true
  }

  depends_on = [google_firestore_database.default]
}

resource "google_firebaserules_release" "firestore" {
  project      = var.project_id
  name         = "cloud.firestore" # the (default) database's release
  ruleset_name = "projects/${var.project_id}/rulesets/${google_firebaserules_ruleset.firestore.name}"

  lifecycle {
    replace_triggered_by = [google_firebaserules_ruleset.firestore]
  }
}
