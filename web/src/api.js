// The HTTP API (docs/api.md), called with the caller's ID token. `base` is "" when the API is
// served on the page's own origin (Firebase Hosting rewrites, or the dev server's relay).

export class ApiError extends Error {
  constructor(status, body) {
    const error = body?.error ?? {};
    super(error.message ?? `HTTP ${status}`);
    this.status = status;
    this.code = error.code ?? "unknown";
    this.body = body ?? {};
  }
}

// The API did not answer at all (network down, dev server gone, 502 from the relay).
export class ApiUnreachable extends Error {}

export class Api {
  constructor(base, getToken) {
    this.base = base;
    this.getToken = getToken;
  }

  async call(method, path, body) {
    const headers = { Authorization: `Bearer ${await this.getToken()}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(`${this.base}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (cause) {
      throw new ApiUnreachable(`the API did not answer (${cause.message})`);
    }
    const text = await response.text();
    let parsed = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      parsed = null;
    }
    if (response.status === 502 && parsed?.error?.code === "api_unreachable") {
      throw new ApiUnreachable(parsed.error.message);
    }
    if (!response.ok) throw new ApiError(response.status, parsed);
    return parsed;
  }

  pricing() {
    return this.call("GET", "/v1/pricing");
  }

  submit(request) {
    return this.call("POST", "/v1/creations", request);
  }

  creation(id) {
    return this.call("GET", `/v1/creations/${encodeURIComponent(id)}`);
  }

  cancel(id) {
    return this.call("POST", `/v1/creations/${encodeURIComponent(id)}:cancel`);
  }

  remove(id) {
    return this.call("DELETE", `/v1/creations/${encodeURIComponent(id)}`);
  }

  reel(clips) {
    return this.call("POST", "/v1/reels", { clips });
  }
}
