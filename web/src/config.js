// Where the page is running: the local dev stack, or a production Firebase project.
//
// The dev server (`make dev`, tools/stack/web.py) answers /dev/config.json; production hosting
// has no such file, and the page then reads firebase-config.json, the file an operator fills
// in with the Firebase web app's config (docs/web.md).

async function readJson(url) {
  let response;
  try {
    response = await fetch(url, { cache: "no-store" });
  } catch {
    return null;
  }
  const type = response.headers.get("Content-Type") ?? "";
  if (!response.ok || !type.includes("json")) return null;
  return response.json();
}

export async function loadConfig() {
  const dev = await readJson("/dev/config.json");
  if (dev?.mode === "dev") return dev;
  const production = await readJson("firebase-config.json");
  if (!production?.apiKey || !production?.projectId) {
    throw new Error(
      "This page is not configured: fill in firebase-config.json with your Firebase web " +
        "app's config (see docs/web.md), or run it locally with `make dev`.",
    );
  }
  return { mode: "production", apiBase: production.apiBase ?? "", firebase: production };
}
