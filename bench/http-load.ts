import http from 'node:http';
import { performance } from 'node:perf_hooks';

// The load generator: plain node:http with keep-alive sockets, one per concurrent caller. It is much
// cheaper per request than fetch, which matters on a 2-core machine where the client, the server and
// PostgreSQL share the CPUs.

export type GraphQLClient = {
  /** Posts a GraphQL request body (already JSON) and returns the parsed response; throws on HTTP or GraphQL errors. */
  post: (body: string) => Promise<{ data?: Record<string, unknown> }>;
  close: () => void;
};

export function createGraphQLClient(graphqlUrl: string, maxSockets: number): GraphQLClient {
  const target = new URL(graphqlUrl);
  const agent = new http.Agent({ keepAlive: true, maxSockets });
  const post = (body: string) =>
    new Promise<{ data?: Record<string, unknown> }>((resolve, reject) => {
      const request = http.request(
        {
          host: target.hostname,
          port: target.port,
          path: target.pathname,
          method: 'POST',
          agent,
          headers: { 'content-type': 'application/json', accept: 'application/json', 'content-length': Buffer.byteLength(body) },
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('error', reject);
          response.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            try {
              const parsed = JSON.parse(text) as { data?: Record<string, unknown>; errors?: unknown[] };
              if (response.statusCode !== 200 || parsed.errors) reject(new Error(`HTTP ${response.statusCode}: ${text.slice(0, 300)}`));
              else resolve(parsed);
            } catch {
              reject(new Error(`HTTP ${response.statusCode}, not JSON: ${text.slice(0, 300)}`));
            }
          });
        },
      );
      request.setTimeout(10_000, () => request.destroy(new Error('no response within 10 s')));
      request.on('error', reject);
      request.end(body);
    });
  return { post, close: () => agent.destroy() };
}

const createJobDocument = 'mutation CreateJob($input: CreateJobInput!) { createJob(input: $input) { id status } }';

export function createJobBody(kind: string, input: unknown): string {
  return JSON.stringify({ query: createJobDocument, variables: { input: { kind, input } } });
}

/** Sends a createJob request body and returns the new job's id. */
export async function createJob(client: GraphQLClient, body: string): Promise<string> {
  const { data } = await client.post(body);
  const job = data?.createJob as { id?: unknown; status?: unknown } | undefined;
  if (typeof job?.id !== 'string' || job.status !== 'QUEUED') throw new Error(`unexpected createJob answer: ${JSON.stringify(data)}`);
  return job.id;
}

export type LoadResult = {
  requests: number;
  concurrency: number;
  errors: number;
  firstError: string | null;
  elapsedMs: number;
  /** Latencies of the successful requests, sorted ascending. */
  latenciesMs: number[];
};

/** Runs `count` calls of `call` from `concurrency` callers, each starting its next call when its last one ends. */
export async function runClosedLoop(count: number, concurrency: number, call: () => Promise<unknown>): Promise<LoadResult> {
  const latencies: number[] = [];
  let next = 0;
  let errors = 0;
  let firstError: string | null = null;
  const caller = async () => {
    while (next < count) {
      next++;
      const started = performance.now();
      try {
        await call();
        latencies.push(performance.now() - started);
      } catch (error) {
        errors++;
        firstError ??= error instanceof Error ? error.message : String(error);
      }
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, caller));
  const elapsedMs = performance.now() - started;
  latencies.sort((a, b) => a - b);
  return { requests: count, concurrency, errors, firstError, elapsedMs, latenciesMs: latencies };
}

/** Nearest-rank percentile of an ascending array; NaN when it is empty. */
export function percentile(sorted: readonly number[], fraction: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(fraction * sorted.length) - 1));
  return sorted[index] ?? Number.NaN;
}
