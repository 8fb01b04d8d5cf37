// What a creation costs, shown before it is submitted: computed from the deployment's own
// price list (`GET /v1/pricing`, docs/api.md), never from numbers of the page's own. A cost is
// the model's `unit_tokens` times the request's size (images, or video seconds; the list's
// `limits` say the size a request that names none gets); a reel is `reel.tokens`.

// The cost of `request` under `prices` (the list the API answered), or null while there is
// no list. A model the list does not name has no price: the API will refuse it anyway.
export function costOf(request, prices) {
  if (!prices) return null;
  if (request.type === "reel") return prices.reel.tokens;
  const size = {
    image: () => request.count ?? prices.limits.count.default,
    video: () => request.duration_seconds ?? prices.limits.duration_seconds.default,
  }[request.type];
  if (!size) throw new Error(`no price for type ${request.type}`);
  const model = request.model ?? prices.defaults[request.type];
  const entry = prices.models.find((m) => m.model === model && m.type === request.type);
  if (!entry) throw new Error(`no price for model ${model}`);
  return size() * entry.unit_tokens;
}

// The price list, once: the page holds it for its life (the API lets clients keep it
// minutes; a deployment changes prices only with a new revision).
export class PriceList {
  constructor(api) {
    this.api = api;
    this.prices = null;
    this.problem = null; // why there is no list, once loading it failed
  }

  async load() {
    try {
      this.prices = await this.api.pricing();
      this.problem = null;
    } catch (error) {
      this.problem = error.message;
    }
    return this.prices;
  }

  cost(request) {
    return costOf(request, this.prices);
  }
}
