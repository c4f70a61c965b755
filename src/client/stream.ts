import { asJobqlError, fromGraphQLErrors, type GraphQLErrorShape } from './errors.ts';

// graphql-ws and graphql-sse both push results into a sink; the client reads them as an async iterator that
// can be ended from either side: the consumer (return(), an AbortSignal) or the server (complete, error).

export type ResultSink = {
  next: (result: { data?: unknown; errors?: readonly GraphQLErrorShape[] | null }) => void;
  error: (error: unknown) => void;
  complete: () => void;
};

/** Starts a subscription on a transport; returns the function that ends it. */
export type StartSubscription = (sink: ResultSink) => () => void;

/**
 * The subscription's results as an iterator of their data. A result with errors and no data (the operation
 * failed: NOT_FOUND, BAD_USER_INPUT, LIMIT_EXCEEDED, …) and a transport error end it with a JobqlError; an abort
 * ends it quietly. A result with data and field errors is data: the job came, a field of it could not.
 */
export function iterateSubscription<Data>(start: StartSubscription, signal?: AbortSignal): AsyncIterableIterator<Data> {
  const queue: Data[] = [];
  let ended: { error: unknown } | { done: true } | null = null;
  let wake: (() => void) | null = null;
  const settle = (end: { error: unknown } | { done: true }) => {
    ended ??= end;
    wake?.();
  };
  const unsubscribe = start({
    next: (result) => {
      if (ended) return;
      if (result.data !== undefined && result.data !== null) queue.push(result.data as Data);
      else settle({ error: fromGraphQLErrors(result.errors ?? [{ message: 'the server sent a result without data' }]) });
      wake?.();
    },
    error: (error) => settle({ error: asJobqlError(error) }),
    complete: () => settle({ done: true }),
  });
  const onAbort = () => {
    unsubscribe();
    settle({ done: true });
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  if (signal?.aborted) onAbort();
  const finish = () => {
    signal?.removeEventListener('abort', onAbort);
    unsubscribe();
    settle({ done: true });
  };
  const iterator: AsyncIterableIterator<Data> = {
    async next() {
      for (;;) {
        const data = queue.shift();
        if (data !== undefined) return { value: data, done: false };
        if (ended) {
          finish();
          if ('error' in ended) throw ended.error;
          return { value: undefined, done: true };
        }
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = null;
      }
    },
    async return() {
      finish();
      return { value: undefined, done: true };
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}
