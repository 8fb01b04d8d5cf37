"""Firestore collection names and document ids: one place, so rules, indexes and code agree."""

from __future__ import annotations

import hashlib

USERS = "users"
LEDGER = "ledger"  # subcollection of users/{uid}
CREATIONS = "creations"
IDEMPOTENCY_KEYS = "idempotency_keys"


def debit_entry_id(creation_id: str) -> str:
    return f"debit:{creation_id}"


def refund_entry_id(creation_id: str) -> str:
    return f"refund:{creation_id}"


def grant_entry_id(grant_id: str) -> str:
    return f"grant:{grant_id}"


def idempotency_doc_id(user_id: str, key: str) -> str:
    """Keys are per user; hashed so any header value makes a valid document id."""
    return hashlib.sha256(f"{user_id}\n{key}".encode()).hexdigest()
