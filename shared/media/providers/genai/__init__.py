"""Google's media models through the google-genai SDK; see provider.py and docs/providers.md."""

from shared.media.providers.genai.provider import GenaiProvider

__all__ = ["GenaiProvider"]
