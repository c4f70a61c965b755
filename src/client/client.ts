import { pause, type ReconnectOptions, reconnectDelay, reconnectPolicy } from './backoff.ts';
import { isRetryable, JobqlError } from './errors.ts';
import {
  ClientAwaitJobDocument,
  ClientCancelJobDocument,
  ClientCreateJobDocument,
  ClientCreateJobsDocument,
  ClientGetJobDocument,
  type ClientJobFragment,
  ClientListJobsDocument,
  ClientRetryJobDocument,
  type CreateJobInput,
  type JobStatus,
} from './generated/graphql.ts';
import { createRequest, type Request } from './http.ts';
import { createSseTransport, createWsTransport, type Transport } from './transports.ts';
import { isFinal, type WatchDeps, type WatchJobOptions, type WatchJobsOptions, watchJob, watchJobs } from './watch.ts';

/** A job as the client returns it: every field of the API's Job. */
export type Job = ClientJobFragment;

export type JobPage = { jobs: Job[]; endCursor: string | null; hasNextPage: boolean };

export type ListJobsOptions = {
  status?: JobStatus | readonly JobStatus[];
  kind?: string;
  /** Jobs per page, 1 to 100. Default 20. */
  pageSize?: number;
  /** Start after this cursor (a page's endCursor). */
  after?: string;
  signal?: AbortSignal;
};

export type JobqlClientOptions = {
  /** The server, e.g. http://127.0.0.1:4000 (its /graphql is used), or the GraphQL endpoint itself. */
  url: string;
  /** Sent as `Authorization: Bearer <key>` (HTTP, SSE) and in the WebSocket's connectionParams. */
  apiKey?: string;
  /** What carries watchJob and watchJobs: graphql-ws (default) or Server-Sent Events. Queries and mutations are HTTP POSTs. */
  transport?: 'ws' | 'sse';
  /** Default: the global fetch. */
  fetch?: typeof fetch;
  /** A WebSocket class for graphql-ws. Default: the global WebSocket (browsers, Node 22 and later). */
  webSocketImpl?: unknown;
  /** How watches reconnect after the connection drops. */
  reconnect?: ReconnectOptions;
  /**
   * A watch's connection that hears nothing from the server for this long (ms) is taken for dead and
   * reconnected. Default 30000; keep it above the server's SSE keep-alive interval (12 s).
   */
  heartbeatTimeoutMs?: number;
};

const MAX_AWAIT_MS = 60_000;

/** The GraphQL endpoint of `url`: a bare origin gets /graphql; ws(s):// becomes http(s)://. */
function endpointOf(url: string): string {
  const parsed = new URL(url.replace(/^ws/, 'http'));
  if (parsed.pathname === '/' || parsed.pathname === '') parsed.pathname = '/graphql';
  return parsed.toString();
}

export function createJobqlClient(options: JobqlClientOptions) {
  const endpoint = endpointOf(options.url);
  const fetchFn = options.fetch ?? globalThis.fetch.bind(globalThis);
  const request = createRequest({ endpoint, apiKey: options.apiKey, fetch: fetchFn });
  let transport: Transport | null = null;
  let disposed = false;
  const deps: WatchDeps = {
    request,
    reconnect: reconnectPolicy(options.reconnect),
    disposed: () => disposed,
    // Opened on the first watch: a client that only sends queries and mutations holds no connection.
    transport: () => {
      if (disposed) throw new JobqlError('CLIENT_DISPOSED', 'this client has been disposed');
      const transportOptions = {
        endpoint,
        apiKey: options.apiKey,
        fetch: fetchFn,
        webSocketImpl: options.webSocketImpl ?? globalThis.WebSocket,
        heartbeatTimeoutMs: options.heartbeatTimeoutMs ?? 30_000,
      };
      transport ??= options.transport === 'sse' ? createSseTransport(transportOptions) : createWsTransport(transportOptions);
      return transport;
    },
  };
  return {
    createJob: async (input: CreateJobInput, signal?: AbortSignal): Promise<Job> =>
      (await request(ClientCreateJobDocument, { input }, signal)).createJob,
    /** 1 to 1000 jobs in one transaction, all or none; a bad item fails the batch (extensions.index names it). */
    createJobs: async (inputs: CreateJobInput[], signal?: AbortSignal): Promise<Job[]> =>
      (await request(ClientCreateJobsDocument, { inputs }, signal)).createJobs,
    /** The job, or null when there is none with this id. */
    getJob: async (id: string, signal?: AbortSignal): Promise<Job | null> => (await request(ClientGetJobDocument, { id }, signal)).job,
    cancelJob: async (id: string, signal?: AbortSignal): Promise<Job> => (await request(ClientCancelJobDocument, { id }, signal)).cancelJob,
    retryJob: async (id: string, signal?: AbortSignal): Promise<Job> => (await request(ClientRetryJobDocument, { id }, signal)).retryJob,
    /** Pages of jobs, newest first, until the last one. */
    listJobs: (listOptions: ListJobsOptions = {}): AsyncGenerator<JobPage> => listJobs(request, listOptions),
    /** The job once it is final; or as it is when `timeoutMs` runs out (default: no limit). NOT_FOUND for an unknown id. */
    awaitJob: (id: string, awaitOptions: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<Job> =>
      awaitJob(request, deps, id, awaitOptions),
    watchJob: (id: string, watchOptions?: WatchJobOptions): AsyncGenerator<Job> => watchJob(deps, id, watchOptions),
    watchJobs: (watchOptions?: WatchJobsOptions): AsyncGenerator<Job> => watchJobs(deps, watchOptions),
    /** Closes the WebSocket or the SSE streams; open watches end. */
    dispose: (): void => {
      disposed = true;
      transport?.dispose();
    },
  };
}

export type JobqlClient = ReturnType<typeof createJobqlClient>;

async function* listJobs(request: Request, options: ListJobsOptions): AsyncGenerator<JobPage> {
  const status = options.status === undefined ? null : typeof options.status === 'string' ? [options.status] : [...options.status];
  let after = options.after ?? null;
  for (;;) {
    const variables = { first: options.pageSize ?? null, after, status, kind: options.kind ?? null };
    const { jobs } = await request(ClientListJobsDocument, variables, options.signal);
    const page = {
      jobs: jobs.edges.map((edge) => edge.node),
      endCursor: jobs.pageInfo.endCursor ?? null,
      hasNextPage: jobs.pageInfo.hasNextPage,
    };
    yield page;
    if (!page.hasNextPage || page.endCursor === null) return;
    after = page.endCursor;
  }
}

/**
 * Query.awaitJob waits at most a minute per request: longer waits are several requests. A request cut by a
 * restart or a network error is sent again after a backoff (it changes nothing), as watches reconnect.
 */
async function awaitJob(
  request: Request,
  deps: WatchDeps,
  id: string,
  options: { timeoutMs?: number; signal?: AbortSignal },
): Promise<Job> {
  const deadline = options.timeoutMs === undefined ? Number.POSITIVE_INFINITY : Date.now() + options.timeoutMs;
  let failures = 0;
  for (;;) {
    const timeoutMs = Math.max(0, Math.min(MAX_AWAIT_MS, deadline - Date.now()));
    let job: Job | null;
    try {
      job = (await request(ClientAwaitJobDocument, { id, timeoutMs }, options.signal)).awaitJob;
      failures = 0;
    } catch (error) {
      failures++;
      if (!isRetryable(error) || failures > deps.reconnect.maxAttempts || Date.now() >= deadline || deps.disposed()) throw error;
      await pause(reconnectDelay(deps.reconnect, failures, error as JobqlError), options.signal);
      continue;
    }
    if (!job) throw new JobqlError('NOT_FOUND', `no job with id ${id}`);
    if (isFinal(job) || Date.now() >= deadline) return job;
  }
}
