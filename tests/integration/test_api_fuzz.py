"""The HTTP API fuzzed against its own specification (docs/openapi.yaml) with schemathesis.

Every operation of the spec gets schema-valid and schema-breaking requests (schemathesis's
positive and negative modes), sent over real HTTP to the functions-framework server
(`submit_url`: gunicorn, as `make dev` and Cloud Functions serve it) on the real Firestore and
Pub/Sub emulators, as alice (who can afford some creations), bob (who can afford almost
nothing) or nobody. Each answer must be in the spec (status, content type, headers, body) and
never a 5xx; a request the spec calls invalid must be refused. Each test starts from seeded
creations of both users, in every state, whose ids the generated paths and clips often use,
so the calls reach their real work and not only "not found".

The last test checks that at least `MIN_REQUESTS` requests were made and prints what was seen
(also written to build/api-fuzz.json). Generation is random on every run (no derandomize):
a failure prints the request to reproduce it, and Hypothesis keeps no database in the repo.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis import Case
from schemathesis.core.parameters import ParameterLocation

from shared.core.settings import Settings
from shared.creations.lifecycle import stage_new
from shared.creations.model import Status
from shared.creations.requests import StoredRequest
from shared.money.ledger import Ledger
from shared.store import paths
from shared.store.documents import Batch, Documents
from tests.support.chain import PROJECT
from tests.support.paths import REPO
from tests.support.seeds import IMAGE, VIDEO, move
from tools.stack.devauth import DevSigner

# Cases per operation: 6 operations x 200 generated cases, and GET /v1/balance, which has
# no parameters and so only a handful of distinct cases (the caller): well over 1000 requests.
EXAMPLES_PER_OPERATION = 200
MIN_REQUESTS = 1000
USERS = ("alice", "bob")
# alice twice: she has the money and the creations, so her calls reach the most code. Nobody
# is also what schemathesis's `ignored_auth` check sends after each call.
CALLERS = ("alice", "alice", "bob", "nobody")
# Enough for a few dozen images and some videos, so submits succeed until the money runs out.
BALANCES = {"alice": 60, "bob": 2}
SUMMARY = REPO / "build" / "api-fuzz.json"

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SCHEMA = schemathesis.openapi.from_path(REPO / "docs" / "openapi.yaml")
# database="none": no .hypothesis folder written into the repository. No generated
# Authorization header: the caller is chosen per example (a real token for alice or bob, or
# none), so negative cases spend themselves on the request and not on a made-up token (bad
# tokens of every kind are tests/integration/test_api_errors.py's).
SCHEMA.config.generation.update(
    max_examples=EXAMPLES_PER_OPERATION, database="none", with_security_parameters=False
)
# A schema-valid request may still be refused: 400 for a rule no JSON Schema can say (a
# field for the other type, a prompt of spaces, a model the deployment does not allow, a
# cursor this API never returned: docs/api.md), 402 for a short balance, 404 for another
# user's creation, 409 for one in the wrong state, 429 once alice's submits reach a per-user
# limit (her seeded pending and processing creations count towards MAX_ACTIVE_PER_USER). A 400
# must then name the broken field (`error_names_a_field`), which is what the contract promises.
SCHEMA.config.checks.positive_data_acceptance.expected_statuses = [
    "2xx",
    "400",
    "401",
    "402",
    "404",
    "409",
    "429",
]
# The names a 400's message may start with: the fields, parameters and headers of the spec.
FIELDS = re.compile(
    r"(type|prompt|negative_prompt|aspect_ratio|duration_seconds|count|model|seed|clips(\[\d+\])?"
    r"|title|image|image_index|webhook|status|limit|cursor|Idempotency-Key|body)(\.\S+)?: "
    r"|.*: unknown (field|query parameter)$",  # the unknown name is the field's name
    re.DOTALL,
)


def error_names_a_field(ctx: object, response: Any, case: Case[Any]) -> bool | None:
    """Every 400 says which field broke which rule (docs/contract.md)."""
    if response.status_code != 400:
        return None
    message = response.json()["error"]["message"]
    if response.json()["error"]["code"] == "invalid_request" and not FIELDS.match(message):
        raise AssertionError(f"a 400 invalid_request that names no field: {message!r}")
    return True


@dataclass(frozen=True)
class Seed:
    user: str
    request: StoredRequest
    status: Status


VIDEO_DRAFT = {
    "content_type": "video/mp4",
    "bytes": 1024,
    "width": 320,
    "height": 180,
    "duration_seconds": 4.0,
}
# Fixed ids, so a failing example replays against the same seeds.
SEEDS = {
    "alice-pending": Seed("alice", IMAGE, "pending"),
    "alice-processing": Seed("alice", VIDEO, "processing"),
    "alice-clip-1": Seed("alice", VIDEO, "draft"),
    "alice-clip-2": Seed("alice", VIDEO, "draft"),
    "alice-image-draft": Seed("alice", IMAGE, "draft"),
    "alice-failed": Seed("alice", IMAGE, "failed"),
    "alice-canceled": Seed("alice", IMAGE, "canceled"),
    "bob-pending": Seed("bob", IMAGE, "pending"),
    "bob-clip": Seed("bob", VIDEO, "draft"),
}
ROUTE_TO: dict[Status, list[Status]] = {
    "pending": [],
    "processing": ["processing"],
    "draft": ["processing", "draft"],
    "failed": ["failed"],
    "canceled": ["canceled"],
}


def seed_creations(documents: Documents, ledger: Ledger, bucket: str) -> None:
    """Each of `SEEDS`, debited as submit would, then moved through the state machine (a
    draft's media named in the media `bucket`, as a worker writes them)."""
    for creation_id, seed in SEEDS.items():
        batch = Batch()
        stage_new(batch, creation_id=creation_id, user_id=seed.user, request=seed.request, cost=1)
        (account,) = documents.read(paths.user(seed.user))
        ledger.stage_debit(batch, account, cost=1, creation_id=creation_id)
        documents.commit(batch)
        for step in ROUTE_TO[seed.status]:
            fields: dict[str, Any] = {}
            if step == "draft":
                uri = f"gs://{bucket}/media/{seed.user}/{creation_id}/0.mp4"
                media = {**VIDEO_DRAFT, "uri": uri}
                if seed.request.TYPE == "image":
                    media = {"uri": uri.replace(".mp4", ".png"), "content_type": "image/png"}
                    media |= {"bytes": 512, "width": 64, "height": 64}
                fields = {"progress": 100, "media": [media]}
            if step == "failed":
                fields = {"error": {"code": "provider_error", "message": "seeded"}}
            move(documents, creation_id, step, fields)


def with_seeded_ids(case: Case[Any], data: st.DataObject) -> None:
    """Half the time, a schema-valid case's creation id (path) or clips (reel body) are swapped
    for seeded ids, any user's: so a reel gets made (alice's clips), refused as not found
    (bob's) or as not a video draft (the rest), and a cancel or delete finds its creation; a
    creation body's `image` likewise. A
    schema-breaking part is left as generated: it is what that case tests."""
    seeded = st.sampled_from(sorted(SEEDS))
    path = case.path_parameters
    if (
        path
        and "creation_id" in path
        and not is_negative(case, ParameterLocation.PATH)
        and data.draw(st.booleans(), label="seeded id")
    ):
        path["creation_id"] = data.draw(seeded, label="creation_id")
    body = case.body
    if (
        case.operation.path == "/v1/reels"
        and isinstance(body, dict)
        and not is_negative(case, ParameterLocation.BODY)
        and data.draw(st.booleans(), label="seeded clips")
    ):
        favourite = st.just(["alice-clip-1", "alice-clip-2"])
        clips: list[Any] = data.draw(
            st.one_of(favourite, st.lists(seeded, min_size=2, max_size=4)), label="clips"
        )
        body["clips"] = clips
    if (
        case.operation.path == "/v1/creations"
        and isinstance(body, dict)
        and "image" in body
        and not is_negative(case, ParameterLocation.BODY)
        and data.draw(st.booleans(), label="seeded image")
    ):
        # A video from alice's image draft is made; any other seed is not found or not one.
        body["image"] = data.draw(seeded, label="image")


# Input a JSON Schema calls valid (or cannot describe) that has broken code before: defect 5,
# and what the fuzzing found (tests/integration/test_api_bad_input.py has one test for each).
# Lone surrogates are not among them: schemathesis re-checks an edited case with a validator
# that cannot hold one; test_api_bad_input.py sends them as raw JSON.
HOSTILE_TEXT = (
    "\x00",
    "\u202e\ufeff\u0085",
    "\N{GRINNING FACE}" * 300,
    " \t\n\u3000 ",
    "'); DROP TABLE creations; --",
    "${jndi:ldap://127.0.0.1/x}",
)
HOSTILE_LIMITS = (
    "\N{SUPERSCRIPT TWO}",
    "\N{ARABIC-INDIC DIGIT THREE}",
    "9" * 5000,
    "+5",
    "0",
    "1e2",
    " 5",
    "-1",
    "",
)
# Not "." or "..": a client removes those path segments before sending (RFC 3986 5.2.4).
HOSTILE_IDS = ("__reserved__", "__x__", "a\nb", "\u00fc", "a b", "a/b", "%00", "a:b")
# Sent as latin-1, as HTTP sends header bytes. Left out on purpose: a control character (the
# HTTP server refuses it before the API: test_api_bad_input.py shows both sides) and edge
# whitespace (`requests` refuses to send it, and HTTP strips it).
HOSTILE_KEYS = ("\u00e9t\u00e9", "k" * 256, "a\u00a0b", "\u00ff" * 10)


def with_hostile_values(case: Case[Any], data: st.DataObject) -> dict[str, str]:
    """One time in four, a case gets one value from the lists above wherever the case is
    schema-valid: a string field of its body, `limit`, the creation id, and the
    Idempotency-Key (returned: the headers to add). The answer must still be in the spec (a
    400 naming the field, or a 404), never a 5xx."""
    if data.draw(st.integers(0, 3), label="hostile?") != 0:
        return {}
    body, path = case.body, case.path_parameters
    if isinstance(body, dict) and not is_negative(case, ParameterLocation.BODY):
        names = sorted(name for name, value in body.items() if isinstance(value, str))
        if names:
            name = data.draw(st.sampled_from(names), label="hostile field")
            body[name] = data.draw(st.sampled_from(HOSTILE_TEXT), label="hostile text")
        elif isinstance(body.get("clips"), list):
            clip = data.draw(st.sampled_from(HOSTILE_TEXT + HOSTILE_IDS), label="hostile clip")
            body["clips"] = [clip, clip]
    if case.operation.label == "GET /v1/creations" and not is_negative(
        case, ParameterLocation.QUERY
    ):
        limit = data.draw(st.sampled_from(HOSTILE_LIMITS), label="hostile limit")
        case.query = {**(case.query or {}), "limit": limit}
    if path and "creation_id" in path and not is_negative(case, ParameterLocation.PATH):
        path["creation_id"] = data.draw(st.sampled_from(HOSTILE_IDS), label="hostile id")
    if case.operation.label in ("POST /v1/creations", "POST /v1/reels") and not is_negative(
        case, ParameterLocation.HEADER
    ):
        return {"Idempotency-Key": data.draw(st.sampled_from(HOSTILE_KEYS), label="key")}
    return {}


def is_negative(case: Case[Any], location: ParameterLocation) -> bool:
    return case.meta is None or case.meta.is_negative_at(location)


def breaks_authorization(case: Case[Any]) -> bool:
    """Whether this case is schemathesis testing a missing or malformed Authorization header
    (which our callers' tokens must then not replace)."""
    if case.meta is None or not case.meta.is_negative_at(ParameterLocation.HEADER):
        return False
    phase = case.meta.phase.data
    return phase.parameter == "Authorization" or "Authorization" in (phase.description or "")


@dataclass
class Tally:
    """What the fuzzing did, over the whole session."""

    sent: int = 0  # every request the session sent (a check that re-sends is counted too)
    statuses: Counter[int] = field(default_factory=Counter)  # of all of those
    cases: Counter[str] = field(default_factory=Counter)  # generated cases, per operation
    seconds: float = 0.0

    def count(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """A `requests` response hook: counts what went over the wire, not what was generated."""
        self.sent += 1
        self.statuses[response.status_code] += 1


TALLY = Tally()


@pytest.fixture
def fuzz_session(
    submit_url: str, documents: Documents, ledger: Ledger, stack: Settings
) -> Iterator[requests.Session]:
    """Seeded users and creations, and a session that counts what it sends."""
    for user, tokens in BALANCES.items():
        ledger.grant(user, tokens + len([s for s in SEEDS.values() if s.user == user]))
    seed_creations(documents, ledger, stack.media_bucket)
    session = requests.Session()
    session.hooks["response"].append(TALLY.count)
    started = time.monotonic()
    yield session
    TALLY.seconds += time.monotonic() - started
    session.close()


@pytest.fixture(scope="session")
def identities(signer: DevSigner) -> dict[str, dict[str, str]]:
    """The headers each caller sends: a valid token for each user, or none at all. Minted
    once: the session is far shorter than a token's hour."""
    headers = {user: {"Authorization": f"Bearer {signer.mint(user, PROJECT)}"} for user in USERS}
    return {**headers, "nobody": {}}


@SCHEMA.parametrize()
@SCHEMA.given(caller=st.sampled_from(CALLERS), data=st.data())
# The seeds are per operation, not per example, on purpose: examples change them (a cancel, a
# delete, a debit) as a client's calls would, and every answer must still be in the spec.
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_api_answers_as_its_spec_says(
    case: Case[Any],
    caller: str,
    data: st.DataObject,
    submit_url: str,
    fuzz_session: requests.Session,
    identities: dict[str, dict[str, str]],
    ledger: Ledger,
) -> None:
    # Should schemathesis itself test a missing or malformed Authorization, the case goes as
    # generated: the caller's token would undo what it tests.
    headers = {} if breaks_authorization(case) else identities[caller]
    with_seeded_ids(case, data)
    headers = {**headers, **with_hostile_values(case, data)}
    before = ledger.balance(caller) if caller in USERS else None
    TALLY.cases[case.operation.label] += 1
    response = case.call_and_validate(
        base_url=submit_url,
        session=fuzz_session,
        headers=headers,
        additional_checks=[error_names_a_field],
    )
    # Said by the checks above too; said here so a reader sees the promise.
    assert response.status_code < 500, (case.operation.label, response.status_code, response.text)
    # A refused call changes no balance (docs/contract.md: "nothing was debited").
    if before is not None and response.status_code >= 400:
        assert ledger.balance(caller) == before, (case.operation.label, response.text)


def test_fuzzing_made_enough_requests(
    request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]
) -> None:
    """Runs after the fuzzing (pytest keeps a module's order): the numbers, checked and shown."""
    fuzzed = [
        item for item in request.session.items if "test_api_answers_as_its_spec_says" in item.name
    ]
    if not fuzzed:
        pytest.skip("the fuzzing tests were not selected")
    summary = {
        "requests": TALLY.sent,
        "cases_per_operation": dict(sorted(TALLY.cases.items())),
        "statuses": dict(sorted(TALLY.statuses.items())),
        "seconds": round(TALLY.seconds, 1),
    }
    SUMMARY.parent.mkdir(exist_ok=True)
    SUMMARY.write_text(json.dumps(summary, indent=2) + "\n")
    with capsys.disabled():  # shown on every run, not only when something failed
        print(f"\napi fuzz: {json.dumps(summary)}")
    assert len(TALLY.cases) == len(list(SCHEMA.get_all_operations())), summary
    assert TALLY.sent >= MIN_REQUESTS, summary
    assert not [status for status in TALLY.statuses if status >= 500], summary
