"""The `submit` function's HTTP API (the contract's `/v1/...` calls)."""

from shared.intake.api.app import SubmitApi

__all__ = ["SubmitApi"]
