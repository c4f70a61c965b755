import type { ServerResponse } from 'node:http';

// Every response the HTTP layer writes itself (Yoga writes its own): JSON bodies, and errors in the two shapes
// clients expect: GraphQL's `{ errors: [{ message, extensions: { code } }] }` on /graphql, and
// `{ error: { code, message } }` on the REST and other routes.

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** An error with its code, in the GraphQL shape when `graphql` (the request was for /graphql), else the REST one. */
export function sendError(res: ServerResponse, status: number, code: string, message: string, graphql = false): void {
  sendJson(res, status, graphql ? { errors: [{ message, extensions: { code } }] } : { error: { code, message } });
}

export function sendUnexpectedError(res: ServerResponse): void {
  sendError(res, 500, 'INTERNAL_SERVER_ERROR', 'Unexpected error.');
}
