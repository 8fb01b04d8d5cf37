"""The compact schema JSON of each pin, kept beside its wheel under build/tfcheck.

Built on first use (download + extraction, about a minute) and reused while it names the pinned
wheel's sha256 and the extractor's format; anything else rebuilds it from the wheel.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

from tools.tfcheck.extract import extract
from tools.tfcheck.fetch import fetch_wheel
from tools.tfcheck.pins import Pin, pin_for
from tools.tfcheck.schema import ProviderSchema

REPO = Path(__file__).resolve().parents[2]
DEFAULT_CACHE = REPO / "build" / "tfcheck"
# Bump when extract.py or the JSON form changes: older caches are rebuilt.
FORMAT = 1


class SchemaError(Exception):
    pass


def _say(message: str) -> None:
    print(f"tfcheck: {message}", file=sys.stderr, flush=True)


def schema_path(pin: Pin, cache_dir: Path) -> Path:
    return cache_dir / f"{pin.package}-{pin.version}.schema.json"


def load_schema(
    pin: Pin, cache_dir: Path = DEFAULT_CACHE, say: Callable[[str], None] = _say
) -> ProviderSchema:
    path = schema_path(pin, cache_dir)
    cached = _read(path, pin)
    if cached is not None:
        return cached
    wheel = fetch_wheel(pin, cache_dir, say)
    say(f"extracting the provider schema from {wheel.name} ...")
    schema = extract(wheel)
    if not schema.source.endswith(f"/{pin.source}") or schema.version != pin.provider_version:
        raise SchemaError(
            f"{pin.requirement} was generated from {schema.source} {schema.version}, "
            f"not {pin.source} {pin.provider_version} (tools/tfcheck/pins.py)"
        )
    document = {"format": FORMAT, "wheel_sha256": pin.sha256, "schema": schema.to_json()}
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(json.dumps(document, separators=(",", ":")))
    temporary.replace(path)
    say(f"cached {path} ({max(1, path.stat().st_size // 1024)} KB)")
    return schema


def _read(path: Path, pin: Pin) -> ProviderSchema | None:
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if document.get("format") != FORMAT or document.get("wheel_sha256") != pin.sha256:
        return None
    schema = ProviderSchema.from_json(document["schema"])
    return schema if schema.version == pin.provider_version else None


class CachedSchemas:
    """Provider schemas by source address, loaded (and fetched) on first use."""

    def __init__(self, cache_dir: Path = DEFAULT_CACHE) -> None:
        self._cache_dir = cache_dir
        self._loaded: dict[str, ProviderSchema] = {}

    @property
    def loaded(self) -> list[ProviderSchema]:
        return list(self._loaded.values())

    def __call__(self, source: str) -> ProviderSchema | None:
        pin = pin_for(source)
        if pin is None:
            return None
        if pin.source not in self._loaded:
            self._loaded[pin.source] = load_schema(pin, self._cache_dir)
        return self._loaded[pin.source]
