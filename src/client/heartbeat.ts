import { networkError } from './errors.ts';

// A connection can die without closing: a laptop that slept, a NAT or proxy that forgot the flow, a cable
// pulled. Nothing arrives and nothing errors, so a watch would wait forever. Both transports therefore expect
// to hear from the server within a bound, and treat silence past it as a dropped connection (the watch then
// reconnects and resumes like after any other drop).
//
// - WebSocket: the client pings every half bound (graphql-ws keepAlive); a pong must come within the other
//   half, and a socket must open and be acknowledged within the bound. Otherwise the socket is terminated.
// - SSE: the server writes a keep-alive comment every 12 s (src/http/sse.ts); a stream with no bytes for the
//   bound errors. graphql-sse does not surface comments, so this watches the response body itself.

type Timer = ReturnType<typeof setTimeout>;

/** The timer must not keep a Node process alive by itself: the connection it guards does, while it is open. */
function unref(timer: Timer): Timer {
  (timer as unknown as { unref?: () => void }).unref?.();
  return timer;
}

/** graphql-ws event handlers that terminate the socket when the server stays silent past `timeoutMs`. */
export function wsHeartbeat(timeoutMs: number, terminate: () => void) {
  let timer: Timer | undefined;
  const arm = () => {
    clearTimeout(timer);
    timer = unref(setTimeout(terminate, timeoutMs));
  };
  const disarm = () => clearTimeout(timer);
  return {
    keepAlive: Math.max(1, Math.floor(timeoutMs / 2)),
    on: {
      connecting: arm,
      connected: disarm,
      ping: (received: boolean) => {
        if (!received) arm();
      },
      pong: (received: boolean) => {
        if (received) disarm();
      },
      closed: disarm,
    },
  };
}

/**
 * fetch for graphql-sse's streams: a response must start, and then a byte (keep-alives included) arrive, within
 * every `idleMs`; otherwise the request is aborted and the stream errors.
 */
export function idleTimeoutFetch(fetchFn: typeof fetch, idleMs: number): typeof fetch {
  return async (input, init) => {
    const stop = new AbortController();
    const signal = init?.signal ? AbortSignal.any([init.signal, stop.signal]) : stop.signal;
    let timer: Timer | undefined;
    const arm = (onSilence: () => void) => {
      clearTimeout(timer);
      timer = unref(setTimeout(onSilence, idleMs));
    };
    signal.addEventListener('abort', () => clearTimeout(timer), { once: true });
    arm(() => stop.abort(networkError(`no response from the server within ${idleMs} ms`)));
    const response = await fetchFn(input, { ...init, signal });
    if (!response.body) {
      clearTimeout(timer);
      return response;
    }
    const silence = (controller: TransformStreamDefaultController<Uint8Array>) => () => {
      try {
        controller.error(networkError(`no data from the server for ${idleMs} ms`));
      } catch {
        // the stream has ended or failed meanwhile
      }
      stop.abort();
    };
    const body = response.body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        start: (controller) => arm(silence(controller)),
        transform(chunk, controller) {
          arm(silence(controller));
          controller.enqueue(chunk);
        },
        flush: () => clearTimeout(timer),
      }),
    );
    return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
  };
}
