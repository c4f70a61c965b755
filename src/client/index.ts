// jobql/client: a typed client for a jobql server, for Node and browsers (no node: imports anywhere under
// src/client). Queries and mutations are HTTP POSTs; watches run over graphql-ws or Server-Sent Events and
// resume across reconnects (watch.ts).

export type { ReconnectOptions } from './backoff.ts';
export { createJobqlClient, type Job, type JobPage, type JobqlClient, type JobqlClientOptions, type ListJobsOptions } from './client.ts';
export { type GraphQLErrorShape, isRetryable, JobqlError, type JobqlErrorCode } from './errors.ts';
export type { CreateJobInput, JobStatus } from './generated/graphql.ts';
export { FINAL_STATUSES, isFinal, type ReconnectEvent, type WatchJobOptions, type WatchJobsOptions } from './watch.ts';
