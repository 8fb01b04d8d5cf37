"""Tokens: the ledger (grants, debits, refunds, each at most once), prices, and refunds.

ledger   balances and their entries, written in the same batch as what they pay for
pricing  what a creation costs, and a model's unit price
refunds  giving a failed or canceled creation's tokens back, exactly once
"""

from shared.money.ledger import Ledger, balance_of, partial_refund_amount
from shared.money.pricing import UNIT_OF_TYPE, creation_cost, unit_tokens
from shared.money.refunds import (
    CANCEL,
    NOT_QUEUED,
    QUEUE_UNAVAILABLE,
    RefundHandler,
    RefundOutcome,
    Refunds,
)

__all__ = [
    "CANCEL",
    "NOT_QUEUED",
    "QUEUE_UNAVAILABLE",
    "UNIT_OF_TYPE",
    "Ledger",
    "RefundHandler",
    "RefundOutcome",
    "Refunds",
    "balance_of",
    "creation_cost",
    "partial_refund_amount",
    "unit_tokens",
]
