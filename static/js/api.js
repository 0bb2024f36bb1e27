// The JSON API under /api/v1, called with the session cookie.
//
// Every request carries X-Dmage-Web: the server refuses cookie writes without
// it, which a cross-site form cannot add.

const PREFIX = "/api/v1";
let signedOut = () => {};

/** An answer other than success, with the server's own message. */
export class ApiError extends Error {
  constructor(status, code, message, detail = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.detail = detail;
  }
}

/** Call this when the server says the session is gone (401). */
export function onSignedOut(callback) {
  signedOut = callback;
}

export async function api(method, path, body = undefined, query = {}) {
  const url = new URL(PREFIX + path, location.origin);
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") {
      url.searchParams.set(name, value);
    }
  }
  const init = {
    method,
    credentials: "same-origin",
    cache: "no-store",
    headers: { "X-Dmage-Web": "1" },
  };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  return answer(await send(url, init), path);
}

async function send(url, init) {
  try {
    return await fetch(url, init);
  } catch {
    throw new ApiError(0, "network", "cannot reach the server: is it running?");
  }
}

async function answer(response, path) {
  const data = await response.json().catch(() => null);
  if (response.ok) return data;
  const error = data?.error ?? {};
  const message = error.message ?? `the server answered ${response.status}`;
  if (response.status === 401 && !path.startsWith("/auth/")) signedOut(message);
  throw new ApiError(response.status, error.code ?? "error", message, error);
}

/** End the server session; keepalive lets it finish while the tab closes. */
export function logout({ keepalive = false } = {}) {
  return fetch(PREFIX + "/auth/logout", {
    method: "POST",
    credentials: "same-origin",
    keepalive,
    headers: { "X-Dmage-Web": "1" },
  }).catch(() => null);
}

export const paths = {
  app: (app) => `/apps/${app}/-`,
  envs: (app) => `/apps/${app}/-/envs`,
  env: (app, env) => `/apps/${app}/-/envs/${env}`,
  revisions: (app, env) => `/apps/${app}/-/envs/${env}/revisions`,
  rollback: (app, env) => `/apps/${app}/-/envs/${env}/rollback`,
};
