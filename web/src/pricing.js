// What a creation costs, shown before it is submitted.
//
// A mirror of the default price table (docs/contract.md, docs/api.md): an image costs
// `count` x 1 token, a video `duration_seconds` x 1 token, a reel 2 tokens. A deployment may
// set other prices (PRICING, per model too): the API then charges what it says, and the page
// shows the `cost` the API answered once the creation exists. Issue 15's `GET /v1/pricing`
// replaces this module: the page will ask the deployment instead of assuming its defaults.
export const DEFAULT_PRICES = Object.freeze({
  imageTokensPerImage: 1,
  videoTokensPerSecond: 1,
  reelTokens: 2,
});

export function costOf(request, prices = DEFAULT_PRICES) {
  switch (request.type) {
    case "image":
      return (request.count ?? 1) * prices.imageTokensPerImage;
    case "video":
      return (request.duration_seconds ?? 8) * prices.videoTokensPerSecond;
    case "reel":
      return prices.reelTokens;
    default:
      throw new Error(`no price for type ${request.type}`);
  }
}
