"""The Celery baseline's intake (benchmarks/baseline/): its token check refuses what the
suite's refuses, and its body check accepts only an image request."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import jwt
import pytest

from benchmarks.baseline.api import BadRequest, parse
from benchmarks.baseline.auth import TokenVerifier, Unauthenticated
from benchmarks.baseline.config import BaselineSettings
from tools.stack.devauth import DevSigner, certs_url, load_or_create_signer, new_signer

PROJECT = "demo-creations"


@pytest.fixture
def signer(tmp_path: Path) -> DevSigner:
    return load_or_create_signer(tmp_path)


@pytest.fixture
def verifier(tmp_path: Path, signer: DevSigner) -> TokenVerifier:
    settings = BaselineSettings.from_env(
        {"GCP_PROJECT": PROJECT, "AUTH_CERTS_URL": certs_url(tmp_path)}
    )
    return TokenVerifier(settings)


def test_a_valid_token_gives_its_uid(verifier: TokenVerifier, signer: DevSigner) -> None:
    assert verifier.uid_of(f"Bearer {signer.mint('ada', PROJECT)}") == "ada"


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Basic abc", "Bearer not-a-jwt"],
)
def test_a_missing_or_malformed_header_is_refused(
    verifier: TokenVerifier, header: str | None
) -> None:
    with pytest.raises(Unauthenticated):
        verifier.uid_of(header)


def test_tokens_the_suite_refuses_are_refused(verifier: TokenVerifier, signer: DevSigner) -> None:
    now = time.time()
    refused = {
        "another project": signer.mint("ada", "someone-elses-project"),
        "expired": signer.mint("ada", PROJECT, issued_at=now - 7200, lifetime_seconds=3600),
        "unknown key": new_signer("stranger").mint("ada", PROJECT),
        "tampered": signer.mint("ada", PROJECT)[:-4] + "AAAA",
        "hmac": jwt.encode(
            {"sub": "ada", "aud": PROJECT, "iss": f"https://securetoken.google.com/{PROJECT}"},
            "x" * 32,
            algorithm="HS256",
            headers={"kid": signer.kid},
        ),
    }
    for what, token in refused.items():
        with pytest.raises(Unauthenticated):
            verifier.uid_of(f"Bearer {token}")
            pytest.fail(f"{what} token accepted")


def test_a_forged_signer_with_the_same_kid_is_refused(
    verifier: TokenVerifier, signer: DevSigner
) -> None:
    forged = dataclasses.replace(new_signer(), kid=signer.kid)
    with pytest.raises(Unauthenticated):
        verifier.uid_of(f"Bearer {forged.mint('ada', PROJECT)}")


def test_an_image_body_is_stored_with_its_options() -> None:
    assert parse({"type": "image", "prompt": "a fox", "seed": 7}) == {
        "type": "image",
        "prompt": "a fox",
        "count": 1,
        "seed": 7,
    }


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        {"prompt": "a fox"},
        {"type": "video", "prompt": "a fox"},
        {"type": "image"},
        {"type": "image", "prompt": "   "},
        {"type": "image", "prompt": "x" * 2001},
        {"type": "image", "prompt": "a fox", "seed": "7"},
        {"type": "image", "prompt": "a fox", "seed": True},
        {"type": "image", "prompt": "a fox", "colour": "red"},
    ],
)
def test_other_bodies_are_bad_requests(body: Any) -> None:
    with pytest.raises(BadRequest):
        parse(body)
