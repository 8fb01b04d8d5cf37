// A partial draft's line on the drafts page (src/drafts.js), under Node's own test runner.
import assert from "node:assert/strict";
import { test } from "node:test";

import { partialLine } from "../src/drafts.js";

const partial = { asked: 4, made: 3, reason: "1 image withheld by the provider's safety filter.", refund: 1 };

test("a partial draft says what was made and what came back", () => {
  assert.equal(partialLine({ status: "draft", partial }), "3 of 4 made, 1 token refunded");
  assert.equal(
    partialLine({ status: "draft", partial: { ...partial, made: 2, refund: 2 } }),
    "2 of 4 made, 2 tokens refunded",
  );
});

test("any other creation has no such line", () => {
  assert.equal(partialLine({ status: "draft", partial: null }), null);
  assert.equal(partialLine({ status: "draft" }), null);
  assert.equal(partialLine({ status: "failed", partial }), null);
});
