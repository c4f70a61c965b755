import { JobqlError } from '../jobs/errors.ts';
import { failureCodeMeanings } from '../jobs/failure-codes.ts';
import { type Job as JobRow, type JsonValue, jobStatuses, UnreadableJson } from '../jobs/job.ts';
import type { CreateJobRequest } from '../jobs/job-service.ts';
import { MAX_JSON_DEPTH } from '../jobs/json-check.ts';
import { builder } from './builder.ts';

export const JobStatus = builder.enumType('JobStatus', {
  description: 'Where a job is in its life. COMPLETED, FAILED and CANCELLED are final.',
  values: Object.fromEntries(jobStatuses.map((status) => [status.toUpperCase(), { value: status }])) as {
    [S in (typeof jobStatuses)[number] as Uppercase<S>]: { value: S };
  },
});

export const JobError = builder.objectRef<{ code: string; message: string }>('JobError').implement({
  description: 'Why an attempt of a job failed.',
  fields: (t) => ({
    code: t.exposeString('code', {
      description: `One of jobql's codes, or a code of the handler's own (JobFailure). ${Object.entries(failureCodeMeanings)
        .map(([code, meaning]) => `${code}: ${meaning}.`)
        .join(' ')}`,
    }),
    message: t.exposeString('message'),
  }),
});

/** A stored value too deep to send is a field error (the rest of the job, and of a page, still answers). */
function readable(value: JsonValue | UnreadableJson, field: string): JsonValue {
  if (value instanceof UnreadableJson) throw new JobqlError('UNREADABLE_JSON', `the job's stored ${field} is ${value.message}`);
  return value;
}

export const Job = builder.objectType('Job', {
  description: 'A unit of background work and, once it has one, its result.',
  fields: (t) => ({
    id: t.exposeID('id'),
    kind: t.exposeString('kind'),
    status: t.field({ type: JobStatus, resolve: (job) => job.status }),
    input: t.field({
      type: 'JSON',
      nullable: true,
      description: `The job's input. Null only with an UNREADABLE_JSON error: a stored input nested deeper than ${MAX_JSON_DEPTH} levels, which the API never accepts.`,
      resolve: (job) => readable(job.input, 'input'),
    }),
    result: t.field({
      type: 'JSON',
      nullable: true,
      description: 'Set once the job is COMPLETED.',
      resolve: (job) => readable(job.result, 'result'),
    }),
    error: t.field({
      type: JobError,
      nullable: true,
      description: 'Why the job FAILED; null in every other status (see lastError).',
      resolve: (job) => (job.status !== 'failed' || job.errorCode === null ? null : { code: job.errorCode, message: job.error ?? '' }),
    }),
    lastError: t.field({
      type: JobError,
      nullable: true,
      description: 'The error of the last attempt that did not succeed, in any status: readable while a retry waits and after it succeeds.',
      resolve: (job) => (job.errorCode === null ? null : { code: job.errorCode, message: job.error ?? '' }),
    }),
    maxAttempts: t.exposeInt('maxAttempts', {
      description: 'Attempts the job may take; a failure or interruption with attempts left is retried.',
    }),
    priority: t.exposeInt('priority', { description: 'Higher runs first; FIFO within a priority.' }),
    runAt: t.expose('runAt', { type: 'DateTime', description: 'Not started before this time (requested start, or the next retry).' }),
    timeoutMs: t.exposeInt('timeoutMs', { nullable: true, description: "The job's own timeout; null: its kind's default, if any." }),
    cancelRequestedAt: t.expose('cancelRequestedAt', {
      type: 'DateTime',
      nullable: true,
      description: 'When cancelJob asked a running job to stop; it ends CANCELLED.',
    }),
    idempotencyKey: t.exposeString('idempotencyKey', { nullable: true }),
    progress: t.exposeFloat('progress', { nullable: true, description: 'Fraction done, 0 to 1, as last reported by the handler.' }),
    attempt: t.exposeInt('attempt', { description: 'How many times the job has been started.' }),
    revision: t.exposeInt('revision', {
      description: 'Grows by one with every change a client can see (status, progress, result, error). Pass it as afterRevision to resume.',
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
    startedAt: t.expose('startedAt', { type: 'DateTime', nullable: true }),
    finishedAt: t.expose('finishedAt', { type: 'DateTime', nullable: true }),
  }),
});

type PageInfoShape = { hasNextPage: boolean; hasPreviousPage: boolean; startCursor: string | null; endCursor: string | null };
type JobEdgeShape = { cursor: string; node: JobRow };

const PageInfo = builder.objectRef<PageInfoShape>('PageInfo').implement({
  fields: (t) => ({
    hasNextPage: t.exposeBoolean('hasNextPage'),
    hasPreviousPage: t.exposeBoolean('hasPreviousPage', { description: 'Always false: the list pages forward only.' }),
    startCursor: t.exposeString('startCursor', { nullable: true }),
    endCursor: t.exposeString('endCursor', { nullable: true }),
  }),
});

const JobEdge = builder.objectRef<JobEdgeShape>('JobEdge').implement({
  fields: (t) => ({
    cursor: t.exposeString('cursor'),
    node: t.field({ type: Job, resolve: (edge) => edge.node }),
  }),
});

const JobConnection = builder.objectRef<{ edges: JobEdgeShape[]; pageInfo: PageInfoShape }>('JobConnection').implement({
  description: 'A page of jobs, newest first.',
  fields: (t) => ({
    edges: t.field({ type: [JobEdge], resolve: (connection) => connection.edges }),
    pageInfo: t.field({ type: PageInfo, resolve: (connection) => connection.pageInfo }),
  }),
});

const CreateJobInput = builder.inputType('CreateJobInput', {
  fields: (t) => ({
    kind: t.string({ required: true, description: 'One of the kinds this server knows (echo, sleep, fail, …).' }),
    input: t.field({ type: 'JSON', required: false, description: "The job's input, checked against the kind's schema. Default {}." }),
    idempotencyKey: t.string({
      required: false,
      description:
        'A second createJob with the same key returns the first job and creates nothing; with another kind or input it is a CONFLICT.',
    }),
    runAt: t.field({ type: 'DateTime', required: false, description: 'Start no earlier than this. Default: now.' }),
    priority: t.int({ required: false, description: '-1000 to 1000, higher first. Default 0.' }),
    maxAttempts: t.int({ required: false, description: '1 to 100. Default 1: a failure or interruption is final.' }),
    timeoutMs: t.int({
      required: false,
      description: "Past this the handler is aborted and the attempt ends TIMEOUT. Default: the kind's.",
    }),
  }),
});

// CreateJobInput's fields are the use case's request, one to one.
const createRequest = (input: CreateJobRequest): CreateJobRequest => input;

builder.queryType({
  fields: (t) => ({
    job: t.field({
      type: Job,
      nullable: true,
      description: 'The job with this id, or null when there is none.',
      args: { id: t.arg.id({ required: true }) },
      resolve: (_root, args, ctx) => ctx.jobs.getJob(String(args.id)),
    }),
    awaitJob: t.field({
      type: Job,
      nullable: true,
      description:
        'Waits until the job is final and returns it, or returns it as it is when timeoutMs (at most 60000) runs out. Null for an unknown id.',
      args: { id: t.arg.id({ required: true }), timeoutMs: t.arg.int({ required: true }) },
      resolve: (_root, args, ctx) => ctx.live.awaitJob(String(args.id), args.timeoutMs),
    }),
    jobs: t.field({
      type: JobConnection,
      description: 'Jobs, newest first. `first` is 1 to 100 (default 20); `after` is an endCursor from an earlier page.',
      args: {
        first: t.arg.int(),
        after: t.arg.string(),
        status: t.arg({ type: [JobStatus] }),
        kind: t.arg.string(),
      },
      resolve: async (_root, args, ctx) => {
        const page = await ctx.jobs.listJobs({ first: args.first, after: args.after, statuses: args.status, kind: args.kind });
        return {
          edges: page.jobs.map((job, i) => ({ node: job, cursor: page.cursors[i] as string })),
          pageInfo: {
            hasNextPage: page.hasNextPage,
            hasPreviousPage: false,
            startCursor: page.cursors[0] ?? null,
            endCursor: page.cursors.at(-1) ?? null,
          },
        };
      },
    }),
  }),
});

builder.subscriptionType({
  fields: (t) => ({
    jobUpdated: t.field({
      type: Job,
      description:
        'The job as it is now, then every later change in revision order; completes after a final state (COMPLETED, FAILED, CANCELLED). ' +
        'With afterRevision (or SSE Last-Event-ID), revisions the client already has are skipped.',
      args: { id: t.arg.id({ required: true }), afterRevision: t.arg.int() },
      subscribe: async (_root, args, ctx) => {
        const after = args.afterRevision ?? lastEventRevision(ctx.lastEventId);
        return ctx.live.jobUpdated(String(args.id), after);
      },
      resolve: (job) => job,
    }),
    jobsUpdated: t.field({
      type: Job,
      description: 'Every change of every job matching the filter (status after the change, kind), for dashboards.',
      args: { status: t.arg({ type: [JobStatus] }), kind: t.arg.string() },
      subscribe: (_root, args, ctx) =>
        ctx.live.jobsUpdated({ statuses: args.status && args.status.length > 0 ? args.status : null, kind: args.kind ?? null }),
      resolve: (job) => job,
    }),
  }),
});

/** Last-Event-ID carries the revision we sent as the SSE event id; anything else is ignored. */
function lastEventRevision(lastEventId: string | null): number | null {
  return lastEventId !== null && /^\d{1,9}$/.test(lastEventId) ? Number(lastEventId) : null;
}

builder.mutationType({
  fields: (t) => ({
    createJob: t.field({
      type: Job,
      description: 'Accepts a job and returns it at once, QUEUED; it runs in the background.',
      args: { input: t.arg({ type: CreateJobInput, required: true }) },
      resolve: (_root, { input }, ctx) => ctx.jobs.createJob(createRequest(input)),
    }),
    createJobs: t.field({
      type: [Job],
      description: 'Creates 1 to 1000 jobs in one transaction, all or none (a bad item fails the batch with extensions.index), in order.',
      args: { inputs: t.arg({ type: [CreateJobInput], required: true }) },
      resolve: (_root, { inputs }, ctx) => ctx.jobs.createJobs(inputs.map(createRequest)),
    }),
    cancelJob: t.field({
      type: Job,
      description:
        'A QUEUED job is CANCELLED at once; a RUNNING one is asked to stop wherever it runs and ends CANCELLED. A CANCELLED job is returned unchanged; a COMPLETED or FAILED one is a CONFLICT.',
      args: { id: t.arg.id({ required: true }) },
      resolve: (_root, args, ctx) => ctx.jobs.cancelJob(String(args.id)),
    }),
    retryJob: t.field({
      type: Job,
      description: 'Puts a FAILED or CANCELLED job back in the queue as a new attempt; other states are a CONFLICT.',
      args: { id: t.arg.id({ required: true }) },
      resolve: (_root, args, ctx) => ctx.jobs.retryJob(String(args.id)),
    }),
  }),
});
