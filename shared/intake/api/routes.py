"""The URL map of the API. Ids are restricted so `/{id}:cancel` never reads as an id."""

from __future__ import annotations

from werkzeug.routing import BaseConverter, Map, Rule

from shared.creations.model import CREATION_ID_PATTERN


class CreationIdConverter(BaseConverter):
    regex = CREATION_ID_PATTERN


# Each endpoint names the `SubmitApi` handler of the same name (see `SubmitApi.handlers`).
ROUTES = Map(
    [
        Rule("/v1/creations", methods=["POST"], endpoint="create_creation"),
        Rule("/v1/creations", methods=["GET"], endpoint="list_creations"),
        Rule("/v1/creations/<cid:creation_id>", methods=["GET"], endpoint="get_creation"),
        Rule("/v1/creations/<cid:creation_id>", methods=["DELETE"], endpoint="delete_creation"),
        Rule(
            "/v1/creations/<cid:creation_id>:cancel", methods=["POST"], endpoint="cancel_creation"
        ),
        # Not an id: `:` is outside the id pattern, and these have no `/` after `creations`.
        Rule("/v1/creations:estimate", methods=["POST"], endpoint="estimate_creation"),
        Rule("/v1/reels", methods=["POST"], endpoint="create_reel"),
        Rule("/v1/reels:estimate", methods=["POST"], endpoint="estimate_reel"),
        Rule("/v1/balance", methods=["GET"], endpoint="get_balance"),
        Rule("/v1/pricing", methods=["GET"], endpoint="get_pricing"),
    ],
    converters={"cid": CreationIdConverter},
    strict_slashes=False,
)
