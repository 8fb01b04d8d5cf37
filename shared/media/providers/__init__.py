"""Who makes the media of an image or video creation: `PROVIDER=offline` (the default: real
files made on this machine) or `PROVIDER=genai` (Veo, Imagen and Gemini image models).

    base       what a provider is given and returns, and the errors it may raise
    selection  choosing one from the settings
    offline    real PNGs and MP4s, no network (Pillow, ffmpeg)
    genai/     Google's models through google-genai

`base` and `selection` are exported; each provider is imported only when chosen.
"""

from shared.media.providers.base import (
    EmptyResult,
    GeneratedMedia,
    GenerationContext,
    InvalidGenerationRequest,
    Provider,
    ProviderPermanent,
    ProviderTimeout,
    ProviderTransient,
    SafetyBlocked,
)
from shared.media.providers.selection import build_provider

__all__ = [
    "EmptyResult",
    "GeneratedMedia",
    "GenerationContext",
    "InvalidGenerationRequest",
    "Provider",
    "ProviderPermanent",
    "ProviderTimeout",
    "ProviderTransient",
    "SafetyBlocked",
    "build_provider",
]
