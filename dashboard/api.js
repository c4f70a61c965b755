// How the dashboard reaches the API: jobql/client (served at /ui/client/) for jobs, their actions and the live
// feeds; plain POSTs for the dashboard-only queries the client does not cover (stats, throughput, kinds,
// history). The API key, when the server wants one, lives in sessionStorage: for this tab only.
import { createJobqlClient } from '/ui/client/index.ts';

const KEY_ITEM = 'jobql.apiKey';

export function storedKey() {
  return sessionStorage.getItem(KEY_ITEM);
}

export function storeKey(key) {
  if (key) sessionStorage.setItem(KEY_ITEM, key);
  else sessionStorage.removeItem(KEY_ITEM);
}

/** An error from the API, with its extensions.code, shown to the user as "CODE: message". */
export class ApiError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

/** Runs one GraphQL operation; throws an ApiError for an HTTP or GraphQL error. */
export async function graphql(query, variables = {}, apiKey = storedKey()) {
  const headers = { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json' };
  if (apiKey) headers.authorization = `Bearer ${apiKey}`;
  let response;
  try {
    response = await fetch('/graphql', { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
  } catch (error) {
    throw new ApiError('NETWORK_ERROR', `the server could not be reached (${error.message})`);
  }
  const body = await response.json().catch(() => null);
  const first = body?.errors?.[0] ?? body?.error;
  if (first) throw new ApiError(first.extensions?.code ?? first.code ?? `HTTP_${response.status}`, first.message);
  if (!response.ok || !body?.data) throw new ApiError(`HTTP_${response.status}`, response.statusText || 'no data in the answer');
  return body.data;
}

/** null when the key is accepted (or none is needed); else the ApiError. */
export async function checkKey(apiKey) {
  try {
    await graphql('{ kinds { name } }', {}, apiKey);
    return null;
  } catch (error) {
    return error;
  }
}

export function createClient() {
  return createJobqlClient({ url: location.origin, apiKey: storedKey() ?? undefined });
}

/** "CODE: message" of any error. */
export function describe(error) {
  return error?.code ? `${error.code}: ${error.message}` : String(error?.message ?? error);
}
