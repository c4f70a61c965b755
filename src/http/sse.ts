import type { ExecutionResult } from 'graphql';
import type { Plugin } from 'graphql-yoga';

const PING_INTERVAL_MS = 12_000;

/**
 * Serves subscriptions over Server-Sent Events like Yoga does (event: next / complete, keep-alive comments),
 * plus an `id:` line with the job's revision, read from the event itself (see revisionOf), so that a
 * reconnecting EventSource sends it back as Last-Event-ID and resumes where it was. The stream is pulled: a
 * client that stops reading stops the subscription's generator instead of filling memory.
 */
export function sseWithEventIds(): Plugin {
  return {
    onResultProcess({ result, acceptableMediaTypes, setResultProcessor }) {
      if (!(Symbol.asyncIterator in Object(result)) || !acceptableMediaTypes.includes('text/event-stream')) return;
      setResultProcessor((input, fetchAPI) => streamEvents(input as AsyncIterable<ExecutionResult>, fetchAPI), 'text/event-stream');
    },
  };
}

/**
 * The revision of the job an event carries: every subscription yields one job as its single root field, and
 * its `revision` field, when the client selected it, names the event. Without it the event has no id (the
 * client could not resume from a revision it was never sent).
 */
export function revisionOf(result: ExecutionResult): number | null {
  const [job] = Object.values(result.data ?? {});
  const revision = job !== null && typeof job === 'object' ? (job as { revision?: unknown }).revision : undefined;
  return typeof revision === 'number' && Number.isInteger(revision) ? revision : null;
}

function streamEvents(
  results: AsyncIterable<ExecutionResult>,
  fetchAPI: { ReadableStream: typeof ReadableStream; Response: typeof Response },
) {
  const encoder = new TextEncoder();
  const iterator = results[Symbol.asyncIterator]();
  let ping: NodeJS.Timeout | undefined;
  const body = new fetchAPI.ReadableStream<Uint8Array>({
    start(controller) {
      // A comment first, so that proxies and browsers see the response start at once.
      controller.enqueue(encoder.encode(':\n\n'));
      ping = setInterval(() => {
        if (controller.desiredSize !== null && controller.desiredSize > 0) controller.enqueue(encoder.encode(':\n\n'));
      }, PING_INTERVAL_MS);
    },
    async pull(controller) {
      try {
        const step = await iterator.next();
        if (!step.done && step.value) {
          const revision = revisionOf(step.value);
          const id = revision === null ? '' : `id: ${revision}\n`;
          controller.enqueue(encoder.encode(`${id}event: next\ndata: ${JSON.stringify(withoutInternals(step.value))}\n\n`));
        }
        if (step.done) {
          controller.enqueue(encoder.encode('event: complete\ndata:\n\n'));
          clearInterval(ping);
          controller.close();
        }
      } catch (error) {
        clearInterval(ping);
        controller.error(error);
      }
    },
    async cancel() {
      clearInterval(ping);
      await iterator.return?.();
    },
  });
  return new fetchAPI.Response(body, {
    status: 200,
    headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'content-encoding': 'none' },
  });
}

/** Yoga keeps HTTP hints in extensions.http; they are not for the client. */
function withoutInternals(result: ExecutionResult): ExecutionResult {
  if (!result.extensions || !('http' in result.extensions)) return result;
  const { http: _http, ...extensions } = result.extensions;
  return { ...result, extensions: Object.keys(extensions).length > 0 ? extensions : undefined };
}
