// The console's only way to the ledger: the public HTTP API, with the key kept in this tab's session storage.
const KEY = "keyledger.key";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export const session = {
  key: () => sessionStorage.getItem(KEY),
  signIn: (key) => sessionStorage.setItem(KEY, key),
  signOut: () => sessionStorage.clear(),
};

function url(path, params) {
  const u = new URL(path, location.origin);
  for (const [name, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null && value !== "") u.searchParams.set(name, value);
  }
  return u;
}

async function request(path, params, authenticated) {
  const headers = {};
  if (authenticated) headers.Authorization = `Bearer ${session.key()}`;
  let response;
  try {
    response = await fetch(url(path, params), { headers });
  } catch (e) {
    throw new ApiError(0, "network", `the server did not answer (${e.message})`);
  }
  if (!response.ok) {
    let error = {};
    try { error = (await response.json()).error || {}; } catch (_) { /* not JSON */ }
    throw new ApiError(response.status, error.code || `http_${response.status}`, error.message || response.statusText);
  }
  return response;
}

/** GET a JSON answer with the signed-in key. */
export async function api(path, params) {
  return (await request(path, params, true)).json();
}

/** GET a body as a Blob (exports), with the signed-in key. */
export async function apiBlob(path, params) {
  return (await request(path, params, true)).blob();
}

/** Unauthenticated endpoints: /healthz (JSON) and /metrics (text). */
export async function publicJson(path) {
  return (await request(path, {}, false)).json();
}
export async function publicText(path) {
  return (await request(path, {}, false)).text();
}

/** Every page of a cursor-paged listing, up to `max` items. */
export async function pages(path, params, field, max) {
  const items = [];
  let cursor = null;
  do {
    const page = await api(path, cursor ? { cursor } : params);
    items.push(...page[field]);
    cursor = page.next_cursor;
  } while (cursor && items.length < max);
  return { items: items.slice(0, max), truncated: Boolean(cursor) };
}
