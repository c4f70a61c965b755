import { defineKind, JobFailure } from 'jobql';
import { z } from 'zod';

/** Fetches a URL and returns its size in bytes, reporting progress as the body arrives. */
export const fetchSize = defineKind({
  name: 'fetch-size',
  input: z.strictObject({ url: z.url({ protocol: /^https?$/ }) }),
  // Policies: the defaults of this kind's jobs (createJob may set its own).
  timeoutMs: 60_000,
  maxAttempts: 3,
  handler: async ({ url }, ctx) => {
    // ctx.signal fires on cancel, on timeout and at shutdown: passed to fetch, it ends the request and the body's stream.
    const response = await fetch(url, { signal: ctx.signal });
    if (!response.ok) throw new JobFailure('HTTP_STATUS', `GET ${url} answered ${response.status}`);
    const expected = Number(response.headers.get('content-length')) || null;
    let bytes = 0;
    for await (const chunk of response.body ?? []) {
      bytes += chunk.byteLength;
      if (expected) ctx.progress(Math.min(bytes / expected, 1));
    }
    return { url, bytes, contentType: response.headers.get('content-type') };
  },
});
