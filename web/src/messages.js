// The API's answers, in words for people (docs/contract.md lists the codes).
import { ApiUnreachable } from "./api.js";

export function describeFailure(error, { cost, balance } = {}) {
  if (error instanceof ApiUnreachable) {
    return "The API cannot be reached right now; nothing was submitted. Try again shortly.";
  }
  const status = error.status;
  switch (error.code) {
    case "insufficient_tokens": {
      const missing = typeof cost === "number" && typeof balance === "number"
        ? Math.max(cost - balance, 1) : null;
      return missing === null
        ? `402: not enough tokens (${error.message}). Nothing was debited.`
        : `402: not enough tokens: this costs ${cost} and you have ${balance}, ` +
          `so ${missing} more ${missing === 1 ? "token is" : "tokens are"} needed. Nothing was debited.`;
    }
    case "queue_unavailable":
      return error.body.refunded
        ? "503: the job could not be queued, so it will not run. Your tokens were refunded."
        : "503: the job could not be queued, so it will not run. Your tokens are being refunded (within seconds).";
    case "too_many_active":
      return `429: ${error.message}. Nothing was debited.`;
    case "rate_limited":
      return `429: too many submits at once; nothing was debited. ${error.message}`;
    case "busy":
      return "503: the service is busy; nothing was debited. Try again in a few seconds.";
    case "unconfirmed":
      return "503: the service stopped answering midway; check your creations before trying again.";
    case "invalid_request":
    case "invalid_json":
      return `${status}: ${error.message}`;
    case "unauthenticated":
      return "401: your sign-in was refused; sign in again.";
    case "conflict":
      return `409: ${error.message}`;
    case "not_found":
      return "404: that creation no longer exists.";
    default:
      return `${status}: ${error.message}`;
  }
}
