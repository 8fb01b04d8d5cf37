// The drafts page: boots the session, the two listeners, the form and the list.
import { Api, ApiError } from "./api.js";
import { loadConfig } from "./config.js";
import { exposeForConsole } from "./devconsole.js";
import { DraftsView, describe } from "./drafts.js";
import { CreateForm } from "./form.js";
import { watchBalance, watchCreations } from "./listeners.js";
import { describeFailure } from "./messages.js";
import { confirmInDialog } from "./modal.js";
import { PriceList } from "./pricing.js";
import { openSession } from "./session.js";

// How long the first answer from Firestore may take before the page says it cannot reach it.
const FIRESTORE_PATIENCE_MS = 10_000;

const $ = (id) => document.getElementById(id);

function showProblem(text) {
  const problem = $("problem");
  problem.textContent = text;
  problem.hidden = !text;
}

function say(target, text, { bad = false } = {}) {
  target.textContent = text;
  target.classList.toggle("bad", bad);
}

async function main() {
  let config;
  try {
    config = await loadConfig();
  } catch (error) {
    showProblem(error.message);
    return;
  }
  const session = await openSession(config, {
    onSignedOut: (signIn) => {
      $("sign-in").hidden = false;
      $("sign-in-google").onclick = () => signIn().catch((e) => showProblem(e.message));
    },
  }).catch((error) => {
    showProblem(`Could not sign in: ${error.message}`);
    return undefined;
  });
  if (session === null) {
    $("pick-user").hidden = false; // dev mode, no ?uid= yet: the form reloads with one
    return;
  }
  if (!session) return;
  start(config, session);
}

function start(config, session) {
  $("sign-in").hidden = true;
  $("create").hidden = false;
  $("drafts-section").hidden = false;
  $("user").textContent = session.uid;
  if (session.mode === "dev") $("switch-user").hidden = false;
  if (session.signOut) {
    $("sign-out").hidden = false;
    $("sign-out").onclick = session.signOut;
  }

  const api = new Api(config.apiBase ?? "", session.getToken);
  const prices = new PriceList(api);
  const reelCost = () => prices.cost({ type: "reel" });
  let balance = null;
  const pending = new Map(); // 202 answers the listener has not delivered yet
  let latest = [];
  let form = null; // made below: the list's selection refreshes it (the source-image choices)

  const view = new DraftsView({
    list: $("drafts"),
    empty: $("drafts-empty"),
    loading: $("drafts-loading"),
    activity: $("activity"),
    api,
    actions: {
      cancel: async (creation) => {
        try {
          await api.cancel(creation.id);
        } catch (error) {
          showProblem(`Could not cancel: ${describeFailure(error)}`);
        }
      },
      remove: async (creation, button) => {
        const confirmed = await confirmInDialog($("confirm-delete"), {
          text: `${creation.type} “${describe(creation)}” and its media will be gone for good.`,
          returnFocus: () => view.deleteButtonOf(creation.id) ?? $("drafts-heading"),
        });
        if (!confirmed) return;
        button.disabled = true;
        try {
          // The listener removes the item: the document is marked `deleting`, then gone.
          await api.remove(creation.id);
          // Its button goes with it: keep keyboard focus in the list rather than on <body>.
          $("drafts-heading").focus();
        } catch (error) {
          button.disabled = false;
          showProblem(`Could not delete: ${describeFailure(error)}`);
        }
      },
      selectionChanged: () => {
        refreshReelButton();
        form?.refresh();
      },
    },
  });

  function refreshReelButton() {
    const count = view.selected.size;
    const reel = $("make-reel");
    const cost = reelCost();
    reel.disabled = count < 2;
    if (count < 2) reel.textContent = "Make a reel (select 2+ video drafts)";
    else if (cost === null) reel.textContent = `Make a reel of ${count} clips`;
    else reel.textContent = `Make a reel of ${count} clips (${cost} ${cost === 1 ? "token" : "tokens"})`;
  }

  const render = () => {
    const known = new Set(latest.map((c) => c.id));
    for (const id of known) pending.delete(id);
    view.show([...pending.values(), ...latest]);
  };

  form = new CreateForm($("create"), {
    balance: () => balance,
    prices,
    imageDrafts: () => view.imageDrafts(),
    submit: async (request, cost) => {
      const result = $("create-result");
      say(result, "Submitting…");
      try {
        const created = await api.submit(request);
        say(result, `Submitted: ${created.cost} ${created.cost === 1 ? "token" : "tokens"} debited; balance ${created.balance}.`);
        // Shown at once; the listener's copy replaces it as soon as it arrives.
        if (!latest.some((c) => c.id === created.id)) pending.set(created.id, created);
        render();
      } catch (error) {
        if (error instanceof ApiError && error.status === 400 && /^image(_index)?: unknown field/.test(error.message)) {
          form.disableSourceImage();
          say(result, "This deployment cannot make a video from an image yet; the choice was removed. Nothing was debited.", { bad: true });
          return;
        }
        say(result, describeFailure(error, { cost, balance }), { bad: true });
      }
    },
  });

  $("make-reel").addEventListener("click", async () => {
    const result = $("reel-result");
    try {
      const created = await api.reel([...view.selected]);
      view.clearSelection();
      say(result, `Reel submitted: ${created.cost} tokens debited.`);
      pending.set(created.id, created);
      render();
    } catch (error) {
      say(result, describeFailure(error, { cost: reelCost() ?? undefined, balance }), { bad: true });
    }
  });

  // The costs shown come from the deployment's price list: read once, then shown everywhere.
  prices.load().then(() => {
    form.refreshCost();
    refreshReelButton();
  });

  const firestoreLost = (error) =>
    showProblem(`Cannot read your data from Firestore (${error.code ?? error.message}). ` +
      "The list and balance stop updating until the page is reloaded.");

  watchBalance(session.db, session.uid, {
    onValue: (tokens) => {
      balance = tokens;
      $("balance").textContent = String(tokens);
      form.refreshCost();
    },
    onError: firestoreLost,
  });

  let heardFromServer = false;
  const patience = setTimeout(() => {
    if (!heardFromServer) {
      showProblem("Cannot reach Firestore: your creations cannot be shown right now. " +
        "The page keeps trying.");
    }
  }, FIRESTORE_PATIENCE_MS);
  watchCreations(session.db, session.uid, {
    onChange: (creations, { fromServer }) => {
      if (fromServer && !heardFromServer) {
        heardFromServer = true;
        clearTimeout(patience);
        showProblem("");
      }
      if (!fromServer && !heardFromServer) return; // an empty cache is not "nothing yet"
      latest = creations;
      render();
    },
    onError: firestoreLost,
  });

  if (session.mode === "dev") exposeForConsole(session);
}

$("pick-user").addEventListener("submit", (event) => {
  event.preventDefault();
  const uid = $("uid").value.trim();
  if (uid) window.location.search = `?uid=${encodeURIComponent(uid)}`;
});

main();
