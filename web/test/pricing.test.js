// Costs from the deployment's price list (`GET /v1/pricing`): the page has no prices of its own.
import assert from "node:assert/strict";
import { test } from "node:test";

import { PriceList, costOf } from "../src/pricing.js";

// Prices no deployment defaults to, so a number the page made up would show.
const PRICES = Object.freeze({
  currency: "tokens",
  models: [
    { model: "img-a", type: "image", unit: "image", unit_tokens: 3, default: true },
    { model: "img-b", type: "image", unit: "image", unit_tokens: 5, default: false },
    { model: "vid-a", type: "video", unit: "second", unit_tokens: 7, default: true },
  ],
  defaults: { image: "img-a", video: "vid-a" },
  reel: { tokens: 11 },
  limits: {
    count: { min: 1, max: 4, default: 1 },
    duration_seconds: { min: 4, max: 8, default: 6 },
    clips: { min: 2, max: 20 },
  },
});

test("a cost is the model's unit price times the size, with the list's defaults", () => {
  assert.equal(costOf({ type: "image" }, PRICES), 3);
  assert.equal(costOf({ type: "image", count: 4 }, PRICES), 12);
  assert.equal(costOf({ type: "image", count: 2, model: "img-b" }, PRICES), 10);
  assert.equal(costOf({ type: "video" }, PRICES), 42);
  assert.equal(costOf({ type: "video", duration_seconds: 5 }, PRICES), 35);
  assert.equal(costOf({ type: "reel" }, PRICES), 11);
});

test("without a list there is no cost; what the list does not price is refused", () => {
  assert.equal(costOf({ type: "image", count: 2 }, null), null);
  assert.throws(() => costOf({ type: "song" }, PRICES), /no price for type/);
  assert.throws(() => costOf({ type: "video", model: "img-a" }, PRICES), /no price for model/);
});

test("the price list is read from the API once loaded, and says why it could not be", async () => {
  const asked = [];
  const list = new PriceList({ pricing: async () => (asked.push("pricing"), PRICES) });
  assert.equal(list.cost({ type: "reel" }), null);
  await list.load();
  assert.deepEqual(asked, ["pricing"]);
  assert.equal(list.cost({ type: "reel" }), 11);

  const down = new PriceList({
    pricing: async () => {
      throw new Error("the API did not answer");
    },
  });
  assert.equal(await down.load(), null);
  assert.equal(down.problem, "the API did not answer");
  assert.equal(down.cost({ type: "image" }), null);
});
