import type { JobEventRow } from '../jobs/job-queries.ts';
import { DEFAULT_HISTORY_PAGE, type JobHistory as JobHistoryShape, MAX_PAGE_SIZE } from '../jobs/job-service.ts';
import { builder } from './builder.ts';
import { Job, JobError, JobStatus } from './job.ts';

// A job's revisions from the event log (job_events), for a job page's history.

const JobEvent = builder.objectRef<JobEventRow>('JobEvent').implement({
  description: 'The job as it was at one revision: what a jobUpdated subscriber received then (the input and result are on Job).',
  fields: (t) => ({
    revision: t.exposeInt('revision'),
    at: t.expose('at', { type: 'DateTime', description: 'When the change was recorded.' }),
    status: t.field({ type: JobStatus, resolve: (event) => event.status }),
    progress: t.exposeFloat('progress', { nullable: true }),
    attempt: t.exposeInt('attempt'),
    lastError: t.field({
      type: JobError,
      nullable: true,
      description: "The last failed attempt's error at this revision (as Job.lastError); the reason of a FAILED revision.",
      resolve: (event) => (event.errorCode === null ? null : { code: event.errorCode, message: event.error ?? '' }),
    }),
    runAt: t.expose('runAt', { type: 'DateTime', nullable: true }),
    startedAt: t.expose('startedAt', { type: 'DateTime', nullable: true }),
    finishedAt: t.expose('finishedAt', { type: 'DateTime', nullable: true }),
    cancelRequestedAt: t.expose('cancelRequestedAt', { type: 'DateTime', nullable: true }),
  }),
});

const JobHistory = builder.objectRef<JobHistoryShape>('JobHistory').implement({
  description: "A page of a job's revisions, oldest first.",
  fields: (t) => ({
    events: t.field({ type: [JobEvent], resolve: (history) => [...history.events] }),
    hasNextPage: t.exposeBoolean('hasNextPage', {
      description: "More revisions follow: ask again with afterRevision set to this page's last revision.",
    }),
    startsAtRevision: t.exposeInt('startsAtRevision', {
      nullable: true,
      description:
        'The oldest revision the event log still holds for the job. Above 1 when older ones were pruned (the log keeps EVENT_LOG_RETENTION, default an hour): the history starts there. Null when none is left; the job itself is its latest revision.',
    }),
  }),
});

builder.objectField(Job, 'history', (t) =>
  t.field({
    type: JobHistory,
    description: `The job's revisions from the event log, oldest first: \`first\` 1 to ${MAX_PAGE_SIZE} (default ${DEFAULT_HISTORY_PAGE}) after \`afterRevision\` (default 0).`,
    args: {
      first: t.arg.int({ defaultValue: DEFAULT_HISTORY_PAGE }),
      afterRevision: t.arg.int({ defaultValue: 0 }),
    },
    resolve: (job, args, ctx) => ctx.jobs.history(job.id, args),
  }),
);
