import { pause, type ReconnectPolicy, reconnectDelay } from './backoff.ts';
import { asJobqlError, isRetryable, JobqlError } from './errors.ts';
import {
  ClientGetJobDocument,
  type ClientJobFragment,
  ClientJobsUpdatedDocument,
  type ClientJobsUpdatedSubscription,
  ClientJobUpdatedDocument,
  type ClientJobUpdatedSubscription,
  type JobStatus,
} from './generated/graphql.ts';
import type { Request } from './http.ts';
import { iterateSubscription } from './stream.ts';
import type { Transport } from './transports.ts';

// The live streams, resumed across reconnects.
//
// watchJob keeps one number, the revision of the last state it yielded, and every (re)subscription asks the
// server for what comes after it (jobUpdated's afterRevision; the server reads its event log from there).
// So a dropped connection (a server killed or restarted, a network blip, a graceful stop that completed the
// stream early) costs no revision and repeats none, whichever process answers next. States at or below it
// are dropped too, should a transport ever send the operation again with its first variables.

export const FINAL_STATUSES: readonly JobStatus[] = ['COMPLETED', 'FAILED', 'CANCELLED'];

export const isFinal = (job: { status: JobStatus }) => FINAL_STATUSES.includes(job.status);

/** Told before each reconnect: why (null: the server ended the stream early), after how long, from where. */
export type ReconnectEvent = { attempt: number; delayMs: number; afterRevision: number | null; error: JobqlError | null };

export type WatchDeps = {
  transport: () => Transport;
  request: Request;
  reconnect: ReconnectPolicy;
  disposed: () => boolean;
};

export type WatchJobOptions = {
  /** Start after this revision (one you already have); the server's event log fills in the rest. */
  afterRevision?: number;
  signal?: AbortSignal;
  onReconnect?: (event: ReconnectEvent) => void;
};

/**
 * The job's states in revision order, each once, ending after a final one (COMPLETED, FAILED, CANCELLED).
 * Revisions come without gaps while the server's event log holds them (EVENT_LOG_RETENTION); a client further
 * behind than that, or too slow to read, gets the current state next. Throws a JobqlError for what a reconnect
 * cannot fix (NOT_FOUND, UNAUTHENTICATED, …), or once reconnect.maxAttempts reconnects in a row failed.
 */
export async function* watchJob(deps: WatchDeps, id: string, options: WatchJobOptions = {}): AsyncGenerator<ClientJobFragment> {
  const { signal } = options;
  let last = options.afterRevision ?? null;
  let failures = 0;
  for (;;) {
    let cause: JobqlError | null = null;
    const variables = { id, afterRevision: last };
    const start = deps.transport().subscribe(String(ClientJobUpdatedDocument), variables);
    try {
      for await (const { jobUpdated: job } of iterateSubscription<ClientJobUpdatedSubscription>(start, signal)) {
        failures = 0;
        if (last !== null && job.revision <= last) continue;
        last = job.revision;
        yield job;
        if (isFinal(job)) return;
      }
    } catch (error) {
      cause = asJobqlError(error);
      if (!isRetryable(cause)) throw cause;
    }
    if (signal?.aborted || deps.disposed()) return;
    // Completed without a final state: a server stopping gracefully ends its streams, and a client that
    // already has the final revision gets nothing before the end. The row tells which.
    if (cause === null) {
      const ended = await hasFinalState(deps.request, id, last, signal).catch((error: unknown) => asJobqlError(error));
      if (ended === true) return;
      if (ended instanceof JobqlError) {
        if (!isRetryable(ended)) throw ended;
        cause = ended;
      }
    }
    failures++;
    await waitToReconnect(deps, failures, cause, last, options);
    if (signal?.aborted || deps.disposed()) return;
  }
}

/** Whether the job's final state is one the watch has yielded already; NOT_FOUND when it is gone. */
async function hasFinalState(request: Request, id: string, last: number | null, signal?: AbortSignal): Promise<boolean> {
  const { job } = await request(ClientGetJobDocument, { id }, signal);
  if (!job) throw new JobqlError('NOT_FOUND', `no job with id ${id}`);
  return isFinal(job) && last !== null && job.revision <= last;
}

async function waitToReconnect(
  deps: WatchDeps,
  attempt: number,
  cause: JobqlError | null,
  afterRevision: number | null,
  options: { signal?: AbortSignal; onReconnect?: (event: ReconnectEvent) => void },
): Promise<void> {
  if (attempt > deps.reconnect.maxAttempts) {
    throw cause ?? new JobqlError('NETWORK_ERROR', `gave up after ${attempt - 1} reconnects`);
  }
  const delayMs = reconnectDelay(deps.reconnect, attempt, cause);
  options.onReconnect?.({ attempt, delayMs, afterRevision, error: cause });
  await pause(delayMs, options.signal);
}

export type WatchJobsOptions = {
  status?: JobStatus | readonly JobStatus[];
  kind?: string;
  signal?: AbortSignal;
  /** Changes made while the feed was reconnecting are not replayed: refetch what you show when this is called. */
  onReconnect?: (event: ReconnectEvent) => void;
};

/**
 * Every change of every job matching the filter (status after the change, kind), as the job was at that
 * change; reconnects like watchJob, but the feed has no position to resume from: see onReconnect.
 */
export async function* watchJobs(deps: WatchDeps, options: WatchJobsOptions = {}): AsyncGenerator<ClientJobFragment> {
  const { signal } = options;
  const status = options.status === undefined ? null : typeof options.status === 'string' ? [options.status] : [...options.status];
  let failures = 0;
  for (;;) {
    let cause: JobqlError | null = null;
    const start = deps.transport().subscribe(String(ClientJobsUpdatedDocument), { status, kind: options.kind ?? null });
    try {
      for await (const { jobsUpdated } of iterateSubscription<ClientJobsUpdatedSubscription>(start, signal)) {
        failures = 0;
        yield jobsUpdated;
      }
    } catch (error) {
      cause = asJobqlError(error);
      if (!isRetryable(cause)) throw cause;
    }
    if (signal?.aborted || deps.disposed()) return;
    failures++;
    await waitToReconnect(deps, failures, cause, null, options);
    if (signal?.aborted || deps.disposed()) return;
  }
}
