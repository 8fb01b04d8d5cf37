// The live list of the caller's creations, kept in step with the Firestore listener.
//
// Items are keyed by creation id and updated in place: a snapshot that changes one creation
// leaves the others (their loaded previews, a focused button) alone. A creation whose DELETE
// has begun (`deleting: true`) is shown as gone, as the API treats it (docs/contract.md).

const FINAL = new Set(["draft", "failed", "canceled"]);
const ACTIVITY_KEPT = 50;

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name === "className") node.className = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

export function describe(creation) {
  const request = creation.request ?? {};
  const what = request.prompt ?? request.title ?? (creation.type === "reel"
    ? `${(request.clips ?? []).length} clips` : "");
  return what;
}

function signature(creation) {
  return JSON.stringify([
    creation.status, creation.progress ?? 0, Boolean(creation.refunded),
    creation.error?.message ?? null, describe(creation), (creation.media ?? []).length,
    partialLine(creation),
  ]);
}

// A draft with fewer images than asked for: what was made and what came back
// ("3 of 4 made, 1 token refunded"); null for any other creation.
export function partialLine(creation) {
  const partial = creation.partial;
  if (creation.status !== "draft" || !partial) return null;
  const refund = partial.refund;
  return `${partial.made} of ${partial.asked} made, ${refund} ${refund === 1 ? "token" : "tokens"} refunded`;
}

export class DraftsView {
  constructor({ list, empty, loading, activity, api, actions }) {
    this.list = list;
    this.empty = empty;
    this.loading = loading;
    this.activity = activity;
    this.api = api;
    this.actions = actions; // {cancel(creation), remove(creation, button), selectionChanged()}
    this.items = new Map(); // id -> {node, signature, status, creation, previewFor}
    this.selected = new Set();
    this.loaded = false;
  }

  // `creations`: newest first. The first call ends the loading state.
  show(creations) {
    const visible = creations.filter((c) => !c.deleting);
    const seen = new Set();
    let previous = null;
    for (const creation of visible) {
      seen.add(creation.id);
      const item = this.items.get(creation.id) ?? this.add(creation);
      if (item.signature !== signature(creation)) this.update(item, creation);
      // Keep the DOM order the listener's order, moving only what is out of place.
      const expected = previous ? previous.nextSibling : this.list.firstChild;
      if (expected !== item.node) this.list.insertBefore(item.node, expected);
      previous = item.node;
    }
    for (const [id, item] of this.items) {
      if (!seen.has(id)) {
        item.node.remove();
        this.items.delete(id);
        this.selected.delete(id);
        if (this.loaded) this.announce(`${item.creation.type} “${describe(item.creation)}” removed`);
      }
    }
    this.loaded = true;
    this.loading.hidden = true;
    this.empty.hidden = visible.length > 0;
    this.actions.selectionChanged();
  }

  clearSelection() {
    this.selected.clear();
    for (const box of this.list.querySelectorAll(".select-clip")) box.checked = false;
    this.actions.selectionChanged();
  }

  imageDrafts() {
    return [...this.items.values()]
      .map((item) => item.creation)
      .filter((c) => c.type === "image" && c.status === "draft");
  }

  deleteButtonOf(id) {
    return this.items.get(id)?.node.querySelector("button.delete") ?? null;
  }

  add(creation) {
    const node = element("li", { className: "creation", "data-id": creation.id });
    node.append(element("div", { className: "preview" }), element("div", { className: "body" }));
    const item = { node, signature: null, status: null, creation, previewFor: null };
    this.items.set(creation.id, item);
    return item;
  }

  update(item, creation) {
    const { node } = item;
    const changed = item.status !== creation.status;
    if (changed && this.loaded) {
      this.announce(`${creation.type} “${describe(creation)}”: ${creation.status}` +
        (creation.refunded ? ", tokens refunded" : ""));
    }
    item.creation = creation;
    item.status = creation.status;
    item.signature = signature(creation);
    node.dataset.status = creation.status;
    node.dataset.type = creation.type;
    node.querySelector(".body").replaceChildren(...this.body(creation));
    this.preview(item, creation);
  }

  body(creation) {
    const head = element("div", { className: "head" },
      element("span", { className: "kind" }, creation.type),
      element("span", { className: `badge ${creation.status}`, "data-role": "status" }, creation.status),
      creation.refunded && (creation.status === "failed" || creation.status === "canceled")
        ? element("span", { className: "refunded" }, "refunded") : null,
      typeof creation.cost === "number"
        ? element("span", { className: "cost" }, `${creation.cost} ${creation.cost === 1 ? "token" : "tokens"}`)
        : null,
    );
    const parts = [head, element("p", { className: "prompt" }, describe(creation))];
    if (creation.status === "processing") {
      const value = creation.progress ?? 0;
      parts.push(element("progress", {
        max: 100, value, "aria-label": `Progress of “${describe(creation)}”`,
      }, `${value}%`));
    }
    const partial = partialLine(creation);
    if (partial) {
      parts.push(element("p", { className: "partial", title: creation.partial.reason ?? null }, partial));
    }
    if (creation.error?.message && (creation.status === "failed" || creation.status === "canceled")) {
      parts.push(element("p", { className: "error" }, creation.error.message));
    } else if (creation.status === "canceled") {
      parts.push(element("p", { className: "error" }, "Canceled before it started."));
    }
    parts.push(this.actionsFor(creation));
    return parts;
  }

  actionsFor(creation) {
    const row = element("div", { className: "actions" });
    if (creation.status === "pending") {
      const cancel = element("button", { type: "button", className: "secondary cancel" }, "Cancel");
      cancel.addEventListener("click", () => this.actions.cancel(creation));
      row.append(cancel);
    }
    if (creation.type === "video" && creation.status === "draft") {
      const id = `select-${creation.id}`;
      const box = element("input", { type: "checkbox", id, className: "select-clip",
        checked: this.selected.has(creation.id) });
      box.addEventListener("change", () => {
        if (box.checked) this.selected.add(creation.id);
        else this.selected.delete(creation.id);
        this.actions.selectionChanged();
      });
      row.append(box, element("label", { for: id }, "Use in a reel"));
    }
    if (FINAL.has(creation.status)) {
      const remove = element("button", { type: "button", className: "secondary delete",
        "aria-label": `Delete ${creation.type} “${describe(creation)}”` }, "Delete");
      remove.addEventListener("click", () => this.actions.remove(creation, remove));
      row.append(remove);
    }
    return row;
  }

  // At `draft` the media's download URL comes from the API (the document keeps gs:// URIs).
  async preview(item, creation) {
    const box = item.node.querySelector(".preview");
    if (creation.status !== "draft") {
      item.previewFor = null;
      box.replaceChildren(creation.status === "failed" || creation.status === "canceled"
        ? "no media" : "…");
      return;
    }
    if (item.previewFor === creation.id) return;
    item.previewFor = creation.id;
    box.replaceChildren("loading…");
    let media;
    try {
      media = (await this.api.creation(creation.id)).media?.[0];
    } catch (error) {
      item.previewFor = null;
      box.replaceChildren("preview unavailable");
      return;
    }
    if (!media?.url) {
      box.replaceChildren("no media");
      return;
    }
    const label = `${creation.type} preview: ${describe(creation)}`;
    const shown = media.content_type?.startsWith("video/")
      ? element("video", { src: media.url, controls: true, muted: true, playsinline: true,
        preload: "metadata", "aria-label": label })
      : element("img", { src: media.url, alt: label });
    // Signed URLs expire (15 minutes by default): a video fetched again later, or a load
    // that failed, asks the API once for a fresh URL.
    shown.addEventListener("error", () => {
      if (item.refreshedPreview) return;
      item.refreshedPreview = true;
      item.previewFor = null;
      this.preview(item, item.creation);
    }, { once: true });
    box.replaceChildren(shown);
  }

  announce(text) {
    this.activity.append(element("li", {}, text));
    while (this.activity.childElementCount > ACTIVITY_KEPT) this.activity.firstElementChild.remove();
  }
}
