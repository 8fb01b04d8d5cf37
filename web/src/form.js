// The create form: what to make, its cost before it is submitted (from the deployment's price
// list), and the API's answer.

const ASPECT_RATIOS = {
  image: ["1:1", "16:9", "9:16", "4:3", "3:4"],
  video: ["16:9", "9:16", "1:1"],
};

export class CreateForm {
  constructor(form, { balance, prices, imageDrafts, submit }) {
    this.form = form;
    this.balance = balance; // () => number | null
    this.prices = prices; // a PriceList (pricing.js): its cost(request), or null before it loads
    this.imageDrafts = imageDrafts; // () => [creation]
    this.submitRequest = submit; // async (request, cost) => void
    // Shown until the API says it does not know `image` (video from an image, issue 12).
    this.sourceImageSupported = true;
    this.field = (name) => form.querySelector(`#${name}`);
    form.addEventListener("change", () => this.refresh());
    form.addEventListener("input", () => this.refresh());
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.send();
    });
    this.refresh();
  }

  type() {
    return this.form.querySelector("input[name=type]:checked").value;
  }

  request() {
    const type = this.type();
    const request = {
      type,
      prompt: this.field("prompt").value,
      aspect_ratio: this.field("aspect-ratio").value,
    };
    if (type === "image") request.count = Number(this.field("count").value);
    else {
      request.duration_seconds = Number(this.field("duration").value);
      const source = this.field("source-image").value;
      if (source && this.sourceImageSupported) {
        const [id, index] = source.split("#");
        request.image = id;
        if (index !== undefined) request.image_index = Number(index);
      }
    }
    return request;
  }

  refresh() {
    const type = this.type();
    const ratios = this.field("aspect-ratio");
    if (ratios.dataset.type !== type) {
      ratios.replaceChildren(...ASPECT_RATIOS[type].map((ratio) => new Option(ratio, ratio)));
      ratios.dataset.type = type;
    }
    this.field("count-field").hidden = type !== "image";
    this.field("duration-field").hidden = type !== "video";
    this.refreshSources(type);
    this.refreshCost();
  }

  refreshSources(type) {
    const select = this.field("source-image");
    const drafts = this.imageDrafts();
    this.field("source-field").hidden =
      type !== "video" || !this.sourceImageSupported || drafts.length === 0;
    const chosen = select.value;
    const options = [new Option("none (from the prompt)", "")];
    for (const draft of drafts) {
      const images = (draft.media ?? []).length || 1;
      for (let index = 0; index < images; index++) {
        const label = `${draft.request?.prompt ?? draft.id}${images > 1 ? ` (${index + 1} of ${images})` : ""}`;
        options.push(new Option(label, images > 1 ? `${draft.id}#${index}` : draft.id));
      }
    }
    select.replaceChildren(...options);
    if ([...select.options].some((o) => o.value === chosen)) select.value = chosen;
  }

  refreshCost() {
    const line = this.field("cost");
    let cost;
    try {
      cost = this.prices.cost(this.request());
    } catch {
      line.textContent = "";
      return;
    }
    if (cost === null) {
      delete line.dataset.cost;
      line.textContent = this.prices.problem
        ? `The price list could not be read (${this.prices.problem}); the API says the cost once submitted.`
        : "Reading the price list…";
      return;
    }
    if (!Number.isInteger(cost)) {
      line.textContent = ""; // a count or duration being typed: the API will name the field
      return;
    }
    const balance = this.balance();
    const unit = cost === 1 ? "token" : "tokens";
    line.dataset.cost = String(cost);
    if (typeof balance !== "number") line.textContent = `Costs ${cost} ${unit}.`;
    else if (balance >= cost) line.textContent = `Costs ${cost} ${unit}; you have ${balance}.`;
    else line.textContent = `Costs ${cost} ${unit}; you have ${balance}: ${cost - balance} more needed.`;
  }

  async send() {
    const button = this.field("submit");
    const request = this.request();
    button.disabled = true;
    try {
      await this.submitRequest(request, this.costOrNull(request));
    } finally {
      button.disabled = false;
    }
  }

  costOrNull(request) {
    try {
      return this.prices.cost(request);
    } catch {
      return null;
    }
  }

  // The API refused `image`: this deployment cannot make a video from an image yet.
  disableSourceImage() {
    this.sourceImageSupported = false;
    this.field("source-image").value = "";
    this.refresh();
  }
}
