"""Which SDK call makes which model's media, and in which API mode the pinned SDK allows it.

Families are told apart by the model name, as Google names them: `veo-*` makes videos
through `generate_videos` (a long-running operation), `imagen-*` makes images through
`generate_images`, and `gemini-*-image*` makes images through `generate_content` with image
output. google-genai 3.6.1 refuses `generate_videos` and `generate_images` in Gemini
Developer API mode (it raises `ValueError` before sending anything), so Veo and Imagen run
only in Vertex AI mode there; Gemini image models run in both.
"""

from __future__ import annotations

from typing import Literal

Family = Literal["veo", "imagen", "gemini_image"]
Mode = Literal["vertex", "developer"]

# What each family makes, for checking a job's type against its model.
MAKES: dict[Family, str] = {"veo": "video", "imagen": "image", "gemini_image": "image"}

# The API modes in which the pinned SDK runs each family.
MODES: dict[Family, frozenset[Mode]] = {
    "veo": frozenset({"vertex"}),
    "imagen": frozenset({"vertex"}),
    "gemini_image": frozenset({"vertex", "developer"}),
}

MODE_NAMES: dict[Mode, str] = {
    "vertex": "Vertex AI (GENAI_MODE=vertex)",
    "developer": "the Gemini Developer API (GENAI_MODE=developer)",
}


def family_of(model: str) -> Family | None:
    """The family of `model`, or None for a name this provider does not know how to call."""
    name = model.lower().rsplit("/", 1)[-1]  # "publishers/google/models/x" or "models/x"
    if name.startswith("veo-"):
        return "veo"
    if name.startswith("imagen-"):
        return "imagen"
    if name.startswith("gemini-") and "image" in name:
        return "gemini_image"
    return None


def runs_in(model: str, mode: Mode) -> bool:
    family = family_of(model)
    return family is not None and mode in MODES[family]


def unsupported_models(models: dict[str, str], mode: Mode) -> dict[str, str]:
    """Allowed models (name -> kind) this provider cannot run in `mode`, with the reason."""
    problems: dict[str, str] = {}
    for model, kind in models.items():
        family = family_of(model)
        if family is None:
            problems[model] = "not a Veo, Imagen or Gemini image model"
        elif MAKES[family] != kind:
            problems[model] = f"makes {MAKES[family]}s, not {kind}s"
        elif mode not in MODES[family]:
            problems[model] = f"needs Vertex AI; this deployment uses {MODE_NAMES[mode]}"
    return problems
