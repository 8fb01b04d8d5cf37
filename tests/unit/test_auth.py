from __future__ import annotations

import base64
import json
import time

import jwt
import pytest

from shared.core.errors import RetryableError, Unauthenticated
from shared.core.settings import Settings
from shared.intake.auth import FirebaseTokenVerifier
from tools.stack.devauth import DevSigner, new_signer

PROJECT = "demo-auth"


@pytest.fixture(scope="module")
def signer() -> DevSigner:
    return new_signer()


@pytest.fixture(scope="module")
def stranger() -> DevSigner:
    return new_signer("someone-else")


class CountingFetcher:
    def __init__(self, *signers: DevSigner) -> None:
        self.calls = 0
        self.signers = list(signers)
        self.fail = False

    def __call__(self, url: str) -> tuple[bytes, float]:
        self.calls += 1
        if self.fail:
            raise OSError("certs endpoint down")
        merged = {s.kid: s.certificate_pem.decode() for s in self.signers}
        return json.dumps(merged).encode(), 3600.0


def verifier_for(fetcher: CountingFetcher, clock: float | None = None) -> FirebaseTokenVerifier:
    settings = Settings(gcp_project=PROJECT, auth_clock_skew_seconds=30)
    if clock is None:
        return FirebaseTokenVerifier(settings, fetcher=fetcher)
    return FirebaseTokenVerifier(settings, fetcher=fetcher, clock=lambda: clock)


def test_a_valid_token_gives_its_uid(signer: DevSigner) -> None:
    user = verifier_for(CountingFetcher(signer)).verify_header(
        f"Bearer {signer.mint('alice', PROJECT)}"
    )
    assert user.uid == "alice"
    assert user.claims["iss"] == f"https://securetoken.google.com/{PROJECT}"


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def test_unsigned_alg_none_token_is_refused(signer: DevSigner) -> None:
    now = int(time.time())
    claims = {
        "iss": f"https://securetoken.google.com/{PROJECT}",
        "aud": PROJECT,
        "sub": "eve",
        "iat": now,
        "exp": now + 600,
    }
    token = f"{_b64({'alg': 'none', 'kid': signer.kid})}.{_b64(claims)}."
    with pytest.raises(Unauthenticated, match="RS256"):
        verifier_for(CountingFetcher(signer)).verify_header(f"Bearer {token}")


def test_hmac_token_keyed_with_the_public_certificate_is_refused(signer: DevSigner) -> None:
    # The classic algorithm-confusion attack: HS256 "signed" with the public key's bytes.
    now = int(time.time())
    claims = {
        "iss": f"https://securetoken.google.com/{PROJECT}",
        "aud": PROJECT,
        "sub": "eve",
        "iat": now,
        "exp": now + 600,
    }
    token = jwt.encode(claims, "not-the-key" * 4, algorithm="HS256", headers={"kid": signer.kid})
    with pytest.raises(Unauthenticated, match="RS256"):
        verifier_for(CountingFetcher(signer)).verify(token)


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing"),
        ("", "missing"),
        ("Basic YWxpY2U6cGFzcw==", "Bearer"),
        ("Bearer not-a-jwt", "Bearer"),
        ("Bearer a.b.c", "malformed"),
    ],
)
def test_missing_or_malformed_headers_are_refused(
    signer: DevSigner, header: str | None, reason: str
) -> None:
    with pytest.raises(Unauthenticated, match=reason):
        verifier_for(CountingFetcher(signer)).verify_header(header)


def test_expired_token_is_refused_past_the_clock_skew(signer: DevSigner) -> None:
    token = signer.mint("alice", PROJECT, issued_at=time.time() - 3700, lifetime_seconds=3600)
    with pytest.raises(Unauthenticated, match="expired"):
        verifier_for(CountingFetcher(signer)).verify(token)


def test_token_expired_within_the_clock_skew_is_accepted(signer: DevSigner) -> None:
    token = signer.mint("alice", PROJECT, issued_at=time.time() - 3610, lifetime_seconds=3600)
    assert verifier_for(CountingFetcher(signer)).verify(token).uid == "alice"


def test_wrong_audience_is_refused(signer: DevSigner) -> None:
    token = signer.mint("alice", PROJECT, audience="another-project")
    with pytest.raises(Unauthenticated, match="audience"):
        verifier_for(CountingFetcher(signer)).verify(token)


def test_wrong_issuer_is_refused(signer: DevSigner) -> None:
    token = signer.mint("alice", PROJECT, issuer="https://evil.example/demo-auth")
    with pytest.raises(Unauthenticated, match="issuer"):
        verifier_for(CountingFetcher(signer)).verify(token)


def test_token_signed_by_another_key_with_a_known_kid_is_refused(
    signer: DevSigner, stranger: DevSigner
) -> None:
    forged = DevSigner(
        kid=signer.kid,
        private_key_pem=stranger.private_key_pem,
        certificate_pem=stranger.certificate_pem,
    )
    with pytest.raises(Unauthenticated, match="signature"):
        verifier_for(CountingFetcher(signer)).verify(forged.mint("alice", PROJECT))


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def test_unknown_kids_refetch_at_most_once_per_gap(signer: DevSigner, stranger: DevSigner) -> None:
    fetcher, clock = CountingFetcher(signer), Clock()
    verifier = FirebaseTokenVerifier(Settings(gcp_project=PROJECT), fetcher=fetcher, clock=clock)
    verifier.verify(signer.mint("alice", PROJECT))
    for _ in range(3):
        with pytest.raises(Unauthenticated, match="unknown key"):
            verifier.verify(stranger.mint("alice", PROJECT))
    assert fetcher.calls == 1  # made-up kids do not turn into a stream of fetches
    clock.now += 31
    with pytest.raises(Unauthenticated, match="unknown key"):
        verifier.verify(stranger.mint("alice", PROJECT))
    assert fetcher.calls == 2


def test_rotated_key_is_picked_up(signer: DevSigner, stranger: DevSigner) -> None:
    fetcher, clock = CountingFetcher(signer), Clock()
    verifier = FirebaseTokenVerifier(Settings(gcp_project=PROJECT), fetcher=fetcher, clock=clock)
    verifier.verify(signer.mint("alice", PROJECT))
    fetcher.signers.append(stranger)  # Google publishes a new key
    clock.now += 31
    assert verifier.verify(stranger.mint("bob", PROJECT)).uid == "bob"


def test_certs_unreachable_with_no_cached_keys_is_retryable(signer: DevSigner) -> None:
    fetcher = CountingFetcher(signer)
    fetcher.fail = True
    with pytest.raises(RetryableError):
        verifier_for(fetcher).verify(signer.mint("alice", PROJECT))


def test_token_issued_in_the_future_is_refused(signer: DevSigner) -> None:
    token = signer.mint("alice", PROJECT, issued_at=time.time() + 600)
    with pytest.raises(Unauthenticated, match="not yet valid"):
        verifier_for(CountingFetcher(signer)).verify(token)


def test_auth_time_in_the_future_is_refused(signer: DevSigner) -> None:
    # Issued now, so only the auth_time check can refuse it (a future `iat` is refused anyway).
    token = signer.mint("alice", PROJECT, extra_claims={"auth_time": int(time.time()) + 600})
    with pytest.raises(Unauthenticated, match="auth_time"):
        verifier_for(CountingFetcher(signer)).verify(token)


def test_keys_are_served_stale_while_the_fetch_fails_but_only_up_to_the_cap(
    signer: DevSigner,
) -> None:
    fetcher, clock = CountingFetcher(signer), Clock()
    settings = Settings(gcp_project=PROJECT, auth_certs_max_stale_seconds=600)
    verifier = FirebaseTokenVerifier(settings, fetcher=fetcher, clock=clock)
    verifier.verify(signer.mint("alice", PROJECT))
    fetcher.fail = True
    clock.now += 3600 + 599  # the keys expired (max-age 3600) and the fetch fails: stale
    assert verifier.verify(signer.mint("alice", PROJECT)).uid == "alice"
    clock.now += 2  # past the cap: keys that old may have been revoked
    for _ in range(3):
        with pytest.raises(RetryableError, match="signing keys"):
            verifier.verify(signer.mint("alice", PROJECT))
    assert fetcher.calls == 2  # a failing endpoint is tried once per gap, not per request
    fetcher.fail = False
    clock.now += 31
    assert verifier.verify(signer.mint("alice", PROJECT)).uid == "alice"
    assert fetcher.calls == 3


def test_certs_unreachable_with_no_keys_are_not_fetched_on_every_request(
    signer: DevSigner,
) -> None:
    fetcher, clock = CountingFetcher(signer), Clock()
    fetcher.fail = True
    verifier = FirebaseTokenVerifier(Settings(gcp_project=PROJECT), fetcher=fetcher, clock=clock)
    for _ in range(3):
        with pytest.raises(RetryableError):
            verifier.verify(signer.mint("alice", PROJECT))
    assert fetcher.calls == 1


@pytest.mark.parametrize("uid", ["", "a/b", "x" * 129, "..", "__reserved__", "a\nb", "a\rb"])
def test_subject_that_is_not_a_firebase_uid_is_refused(signer: DevSigner, uid: str) -> None:
    token = signer.mint(uid, PROJECT)
    with pytest.raises(Unauthenticated):
        verifier_for(CountingFetcher(signer)).verify(token)
