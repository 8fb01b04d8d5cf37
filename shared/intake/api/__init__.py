"""The `submit` function's HTTP API (the contract's `/v1/...` calls)."""

from shared.intake.api.app import SubmitApi, build_submit_api

__all__ = ["SubmitApi", "build_submit_api"]
