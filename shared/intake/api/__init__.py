"""The `submit` function's HTTP API (the contract's `/v1/...` calls)."""

from shared.intake.api.app import SubmitApi
from shared.intake.api.bodies import unrouted_path_response

__all__ = ["SubmitApi", "unrouted_path_response"]
