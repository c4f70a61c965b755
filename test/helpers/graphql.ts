import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { type ExecutionResult, print } from 'graphql';

export type GraphQLResponse<Data> = ExecutionResult<Data, { code?: string; [key: string]: unknown }> & { httpStatus: number };

/** POSTs a typed operation to a server's /graphql and returns the whole response (data and errors). */
export async function execute<Data, Variables>(
  baseUrl: string,
  document: TypedDocumentNode<Data, Variables>,
  variables?: Variables,
  headers: Record<string, string> = {},
): Promise<GraphQLResponse<Data>> {
  return postGraphQL<Data>(baseUrl, { query: print(document), variables }, headers);
}

/** POSTs any body (for malformed requests the typed operations cannot express). */
export async function postGraphQL<Data = unknown>(
  baseUrl: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<GraphQLResponse<Data>> {
  const response = await fetch(`${baseUrl}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { ...((await response.json()) as ExecutionResult<Data>), httpStatus: response.status } as GraphQLResponse<Data>;
}

/** The data of a response that must have succeeded; fails the test with the errors otherwise. */
export async function data<Data, Variables>(
  baseUrl: string,
  document: TypedDocumentNode<Data, Variables>,
  variables?: Variables,
  headers: Record<string, string> = {},
): Promise<Data> {
  const response = await execute(baseUrl, document, variables, headers);
  if (response.errors?.length || !response.data) throw new Error(`GraphQL errors: ${JSON.stringify(response.errors)}`);
  return response.data;
}
