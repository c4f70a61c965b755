import { DEFAULT_WINDOW_MINUTES, MAX_WINDOW_MINUTES } from '../jobs/job-service.ts';
import type { JobStats as JobStatsShape } from '../jobs/job-stats.ts';
import { builder } from './builder.ts';
import { JobStatus } from './job.ts';

// Counts for dashboards, computed cheaply: unfinished jobs are counted in full (from indexes of unfinished
// jobs), finished ones only over a recent window, so a long history costs nothing.

const FINISHED_MEANING =
  'QUEUED and RUNNING: every such job now. COMPLETED, FAILED and CANCELLED: the jobs that finished since finishedSince (a retried job counts once, at its latest finish).';

const StatusCount = builder.objectRef<JobStatsShape['byStatus'][number]>('JobStatusCount').implement({
  description: `How many of the tenant's jobs have a status. ${FINISHED_MEANING}`,
  fields: (t) => ({
    status: t.field({ type: JobStatus, resolve: (row) => row.status }),
    count: t.exposeInt('count'),
  }),
});

const KindStatusCount = builder.objectRef<JobStatsShape['byKind'][number]>('JobKindStatusCount').implement({
  description: `How many of the tenant's jobs of a kind have a status (counted as in JobStatusCount).`,
  fields: (t) => ({
    kind: t.exposeString('kind'),
    status: t.field({ type: JobStatus, resolve: (row) => row.status }),
    count: t.exposeInt('count'),
  }),
});

const JobStats = builder.objectRef<JobStatsShape>('JobStats').implement({
  description: `The tenant's jobs counted, for dashboards. ${FINISHED_MEANING} Exact counts, read in one snapshot.`,
  fields: (t) => ({
    at: t.expose('at', { type: 'DateTime', description: "When the numbers were read (the database's clock)." }),
    finishedSince: t.expose('finishedSince', {
      type: 'DateTime',
      description: 'The start of the window the finished statuses are counted over: at minus finishedWithinMinutes.',
    }),
    finishedWithinMinutes: t.exposeInt('finishedWithinMinutes'),
    byStatus: t.field({
      type: [StatusCount],
      description: 'Every status, zeros included, in the order QUEUED, RUNNING, COMPLETED, FAILED, CANCELLED.',
      resolve: (stats) => [...stats.byStatus],
    }),
    byKind: t.field({
      type: [KindStatusCount],
      description: 'The (kind, status) pairs that have jobs, by kind, then status.',
      resolve: (stats) => [...stats.byKind],
    }),
    scheduled: t.exposeInt('scheduled', {
      description: 'Of the QUEUED jobs, those not due yet: a runAt in the future, or waiting for a retry.',
    }),
    oldestQueuedAgeSeconds: t.exposeFloat('oldestQueuedAgeSeconds', {
      nullable: true,
      description: 'Seconds since the oldest QUEUED job (due or not) was created; null when none is queued.',
    }),
    oldestDueQueuedAgeSeconds: t.exposeFloat('oldestDueQueuedAgeSeconds', {
      nullable: true,
      description:
        'Seconds the longest-waiting due QUEUED job has been due (since its runAt): how far the runners are behind. Null when no queued job is due.',
    }),
  }),
});

builder.queryField('jobStats', (t) =>
  t.field({
    type: JobStats,
    description: `Counts of the tenant's jobs per status and per kind, and how old its queue is. finishedWithinMinutes (1 to ${MAX_WINDOW_MINUTES}, default ${DEFAULT_WINDOW_MINUTES}) is the window the finished statuses are counted over; unfinished ones are counted in full.`,
    args: { finishedWithinMinutes: t.arg.int({ defaultValue: DEFAULT_WINDOW_MINUTES }) },
    resolve: (_root, args, ctx) => ctx.jobs.jobStats(args.finishedWithinMinutes),
  }),
);
