// The page's pure parts, under Node's own test runner (`npm test`, run by `make test`).
import assert from "node:assert/strict";
import { test } from "node:test";

import { ApiError, ApiUnreachable } from "../src/api.js";
import { describeFailure } from "../src/messages.js";

const error = (status, code, message, extra = {}) =>
  new ApiError(status, { error: { code, message }, ...extra });

test("a 402 says how many tokens are missing", () => {
  const refused = error(402, "insufficient_tokens", "this costs 8 tokens and the balance is 3");
  assert.equal(
    describeFailure(refused, { cost: 8, balance: 3 }),
    "402: not enough tokens: this costs 8 and you have 3, so 5 more tokens are needed. Nothing was debited.",
  );
  assert.match(describeFailure(refused, { cost: 2, balance: 1 }), /so 1 more token is needed/);
  assert.match(describeFailure(refused), /^402: not enough tokens \(this costs 8/);
});

test("a 503 queue_unavailable says whether the tokens are back", () => {
  const back = error(503, "queue_unavailable", "could not queue", { refunded: true });
  const coming = error(503, "queue_unavailable", "could not queue", { refunded: false });
  assert.match(describeFailure(back), /^503: .*will not run\. Your tokens were refunded\.$/);
  assert.match(describeFailure(coming), /^503: .*being refunded/);
});

test("other answers keep their status and the API's words", () => {
  assert.equal(
    describeFailure(error(400, "invalid_request", "prompt: must not be empty")),
    "400: prompt: must not be empty",
  );
  assert.match(describeFailure(error(503, "busy", "try later")), /nothing was debited/);
  assert.match(describeFailure(new ApiUnreachable("down")), /cannot be reached/);
});

test("a 429 says which limit and that nothing was debited", () => {
  const active = error(429, "too_many_active", "5 creations are pending or processing already");
  assert.equal(
    describeFailure(active),
    "429: 5 creations are pending or processing already. Nothing was debited.",
  );
  assert.match(describeFailure(error(429, "rate_limited", "retry in 2 s")), /^429: too many submits.*retry in 2 s$/);
});
