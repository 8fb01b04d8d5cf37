"""The image a video starts from: one of the caller's image drafts, checked as reels check clips.

`POST /v1/creations` with `"image": "<id>"` (and optionally `"image_index"`) asks for a video
that starts from that draft's image. The check reads the draft once, at submit; the request then
records the image's object (`SourceImage`), which the provider reads when the job runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from shared.core.errors import InvalidRequest
from shared.creations import CreationReader, owned_draft
from shared.creations.requests import SourceImage


@dataclass(frozen=True)
class SourceImages:
    """The caller's (`user_id`) image drafts, as sources of videos."""

    creations: CreationReader
    user_id: str

    def find(self, image_id: str, index: int) -> SourceImage:
        """Image `index` of the caller's image draft `image_id`.

        Raises `NotFound` (another user's creation, or none: `image: ...`) or `InvalidRequest`
        (not an image, not a draft: `image: ...`; no such image in it: `image_index: ...`).
        """
        creation = owned_draft(
            self.creations.get_many([image_id]).get(image_id),
            image_id,
            self.user_id,
            field="image",
            kind="image",
            noun="an image",
            use="image drafts can start a video",
        )
        if index >= len(creation.media):
            count = len(creation.media)
            raise InvalidRequest(
                f"image_index: {image_id} has {count} image{'s' if count > 1 else ''}"
                f" (image_index 0-{count - 1})"
            )
        item = creation.media[index]
        try:
            return SourceImage.model_validate(
                {
                    "creation_id": image_id,
                    "index": index,
                    "uri": item.get("uri"),
                    "mime_type": item.get("content_type") or "image/png",
                }
            )
        except ValidationError:  # not a stored object (a hand edit): nothing a video can use
            raise InvalidRequest(
                f"image_index: image {index} of {image_id} is not a stored image"
            ) from None
