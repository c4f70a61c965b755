import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { type ExecutionResult, print } from 'graphql';
import { type Client, createClient } from 'graphql-ws';
import WebSocket from 'ws';

export type StreamEnd = { completed: true } | { error: unknown };

/** A graphql-ws client over `ws`, as a browser or a Node service would use it. */
export function wsClient(baseUrl: string, connectionParams?: Record<string, unknown>): Client {
  return createClient({
    connectionParams,
    url: `${baseUrl.replace(/^http/, 'ws')}/graphql`,
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    lazy: false,
    onNonLazyError: () => {},
  });
}

/** Subscribes and collects every result until the stream completes or fails. */
export function collect<Data, Variables extends Record<string, unknown>>(
  client: Client,
  document: TypedDocumentNode<Data, Variables>,
  variables: Variables,
  onResult?: (result: ExecutionResult<Data>) => void,
): { results: ExecutionResult<Data>[]; done: Promise<StreamEnd>; unsubscribe: () => void } {
  const results: ExecutionResult<Data>[] = [];
  let unsubscribe = () => {};
  const done = new Promise<StreamEnd>((resolve) => {
    unsubscribe = client.subscribe<Data>(
      { query: print(document), variables },
      {
        next: (result) => {
          results.push(result as ExecutionResult<Data>);
          onResult?.(result as ExecutionResult<Data>);
        },
        error: (error) => resolve({ error }),
        complete: () => resolve({ completed: true }),
      },
    );
  });
  return { results, done, unsubscribe: () => unsubscribe() };
}

export type SseEvent = { id: string | null; event: string; data: string };

/**
 * A Server-Sent Events client on fetch: a GET with the operation in the query string and
 * Accept: text/event-stream, as EventSource sends it (with Last-Event-ID when resuming).
 */
export async function sseSubscribe<Data, Variables>(
  baseUrl: string,
  document: TypedDocumentNode<Data, Variables>,
  variables: Variables,
  options: { lastEventId?: string; signal?: AbortSignal; authorization?: string } = {},
): Promise<{ status: number; events: AsyncGenerator<SseEvent> }> {
  const url = new URL(`${baseUrl}/graphql`);
  url.searchParams.set('query', print(document));
  url.searchParams.set('variables', JSON.stringify(variables));
  const headers: Record<string, string> = { accept: 'text/event-stream' };
  if (options.lastEventId) headers['last-event-id'] = options.lastEventId;
  if (options.authorization) headers.authorization = options.authorization;
  const response = await fetch(url, { headers, signal: options.signal });
  const body = response.body;
  async function* events(): AsyncGenerator<SseEvent> {
    if (!body) return;
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const chunk of body) {
      buffer += decoder.decode(chunk as Uint8Array, { stream: true });
      let end = buffer.indexOf('\n\n');
      while (end >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        end = buffer.indexOf('\n\n');
        const event: SseEvent = { id: null, event: 'message', data: '' };
        let isComment = true;
        for (const line of block.split('\n')) {
          if (line.startsWith(':')) continue;
          isComment = false;
          const [field, ...rest] = line.split(':');
          const value = rest.join(':').replace(/^ /, '');
          if (field === 'id') event.id = value;
          else if (field === 'event') event.event = value;
          else if (field === 'data') event.data += value;
        }
        if (!isComment) yield event;
      }
    }
  }
  return { status: response.status, events: events() };
}

/** Reads SSE events until `complete`, returning the `next` payloads with their ids. */
export async function readSseUntilComplete<Data>(
  events: AsyncGenerator<SseEvent>,
): Promise<Array<{ id: string | null; result: ExecutionResult<Data> }>> {
  const received: Array<{ id: string | null; result: ExecutionResult<Data> }> = [];
  for await (const event of events) {
    if (event.event === 'complete') return received;
    if (event.event === 'next') received.push({ id: event.id, result: JSON.parse(event.data) as ExecutionResult<Data> });
  }
  throw new Error(`SSE stream ended without complete after ${received.length} events`);
}
