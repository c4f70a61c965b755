import type { DocumentTypeDecoration } from '@graphql-typed-document-node/core';
import { fromGraphQLErrors, fromHttpStatus, type GraphQLErrorShape, networkError } from './errors.ts';

// Queries and mutations go over plain HTTP POSTs whatever the subscription transport: they need no
// connection state, and a request that failed is the caller's to repeat (a createJob without an
// idempotencyKey must not be sent twice behind its back).

export type Request = <Data, Variables>(
  document: DocumentTypeDecoration<Data, Variables>,
  variables: Variables,
  signal?: AbortSignal,
) => Promise<Data>;

export function createRequest(options: { endpoint: string; apiKey: string | undefined; fetch: typeof fetch }): Request {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    // With this type the server answers errors in the body with their own HTTP status (GraphQL over HTTP).
    accept: 'application/graphql-response+json, application/json',
  };
  if (options.apiKey) headers.authorization = `Bearer ${options.apiKey}`;
  // Called as a plain function: a browser's fetch called as a method of another object throws.
  const send = options.fetch;
  return async (document, variables, signal) => {
    let response: Response;
    try {
      response = await send(options.endpoint, {
        method: 'POST',
        headers,
        body: JSON.stringify({ query: String(document), variables }),
        signal,
      });
    } catch (error) {
      if (signal?.aborted) throw error;
      throw networkError(`could not reach ${options.endpoint}: ${error instanceof Error ? error.message : String(error)}`, error);
    }
    let body: { data?: unknown; errors?: GraphQLErrorShape[] };
    try {
      body = (await response.json()) as typeof body;
    } catch (error) {
      if (signal?.aborted) throw error;
      throw fromHttpStatus(response.status, response.statusText);
    }
    if (Array.isArray(body.errors) && body.errors.length > 0) throw fromGraphQLErrors(body.errors, response.status);
    if (body.data === undefined || body.data === null) throw fromHttpStatus(response.status, response.statusText);
    return body.data as never;
  };
}
