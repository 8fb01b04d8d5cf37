"""Where each kind of document lives: one place, so security rules, indexes and code agree."""

from __future__ import annotations

import hashlib
from typing import Final

USERS: Final = "users"
LEDGER: Final = "ledger"  # subcollection of users/{uid}
CREATIONS: Final = "creations"
IDEMPOTENCY_KEYS: Final = "idempotency_keys"


def creation(creation_id: str) -> str:
    return f"{CREATIONS}/{creation_id}"


def user(user_id: str) -> str:
    return f"{USERS}/{user_id}"


def ledger(user_id: str) -> str:
    """The collection of a user's ledger entries."""
    return f"{user(user_id)}/{LEDGER}"


def debit_entry(user_id: str, creation_id: str) -> str:
    return f"{ledger(user_id)}/debit:{creation_id}"


def refund_entry(user_id: str, creation_id: str) -> str:
    return f"{ledger(user_id)}/refund:{creation_id}"


def partial_refund_entry(user_id: str, creation_id: str) -> str:
    """The refund of the part of a creation that was not made (a partial draft); never beside
    a `refund:{creation}` entry, since a draft is never refunded in full."""
    return f"{ledger(user_id)}/refund:{creation_id}:partial"


def grant_entry(user_id: str, grant_id: str) -> str:
    return f"{ledger(user_id)}/grant:{grant_id}"


def idempotency_key(user_id: str, key: str) -> str:
    """Keys are per user; hashed so any header value makes a valid document id."""
    digest = hashlib.sha256(f"{user_id}\n{key}".encode()).hexdigest()
    return f"{IDEMPOTENCY_KEYS}/{digest}"
