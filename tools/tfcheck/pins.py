"""What each provider is checked against: a cdktn-provider-* wheel on PyPI, generated from one
provider release (its package.json says which; extraction refuses a mismatch).

To move to a new provider release: pick the cdktn-provider-* version generated from it (its
PyPI page or package.json), put its version and its wheel's sha256 here
(`pip download --no-deps --only-binary=:all: <package>==<version>` and `sha256sum`), narrow
the constraints in terraform/ (versions.tf) to that major, and run `make terraform-check`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Pin:
    source: str  # the provider's source address, as in required_providers
    package: str  # the PyPI package carrying its schema
    version: str  # of the package
    sha256: str  # of the package's py3-none-any wheel
    provider_version: str  # the provider release the package was generated from
    size_mb: int  # roughly, for the progress message

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"

    @property
    def wheel_name(self) -> str:
        return f"{self.package.replace('-', '_')}-{self.version}-py3-none-any.whl"


PINS: tuple[Pin, ...] = (
    Pin(
        source="hashicorp/google",
        package="cdktn-provider-google",
        version="20.3.1",
        sha256="562d1a5f4d9850be9f43f53b9c1cbb1899f0ce7c8daaf1e7b51181287e82a380",
        provider_version="7.46.1",
        size_mb=65,
    ),
    Pin(
        source="hashicorp/google-beta",
        package="cdktn-provider-google-beta",
        version="20.3.1",
        sha256="3ed56bf0f493c431f447b37e4e0e4267896cef014b69c1ee599854ddd6a4df3e",
        provider_version="7.46.1",
        size_mb=70,
    ),
    # time_sleep, should a grant need time to propagate before its first use. Fetched only
    # when a module uses the provider.
    Pin(
        source="hashicorp/time",
        package="cdktn-provider-time",
        version="14.0.2",
        sha256="c0616bd5c25e089f9cccc590525b9b03a4b63baa6e9c28b4f064feccb732a890",
        provider_version="0.14.2",
        size_mb=1,
    ),
)


def pin_for(source: str) -> Pin | None:
    """The pin of a provider source address (`hashicorp/google`, `registry.terraform.io/...`)."""
    short = source.lower().removeprefix("registry.terraform.io/")
    return next((pin for pin in PINS if pin.source == short), None)
