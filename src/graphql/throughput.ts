import { DEFAULT_WINDOW_MINUTES, MAX_WINDOW_MINUTES } from '../jobs/job-service.ts';
import type { ThroughputBucket as ThroughputBucketShape } from '../jobs/job-stats.ts';
import { builder } from './builder.ts';

// Jobs finished per minute and the queue's depth over time, for a dashboard's charts.

const ThroughputBucket = builder.objectRef<ThroughputBucketShape>('ThroughputBucket').implement({
  description: "One minute of the tenant's jobs: how many finished in it, by final status, and how many were queued at its end.",
  fields: (t) => ({
    start: t.expose('start', { type: 'DateTime', description: 'The minute (its start); the last bucket is the current, partial minute.' }),
    completed: t.exposeInt('completed', { description: 'Jobs that finished COMPLETED in this minute.' }),
    failed: t.exposeInt('failed', { description: 'Jobs that finished FAILED in this minute.' }),
    cancelled: t.exposeInt('cancelled', { description: 'Jobs that finished CANCELLED in this minute.' }),
    queueDepth: t.exposeInt('queueDepth', {
      nullable: true,
      description:
        "QUEUED jobs (due or not) at the minute's end (the last bucket: now), reconstructed from the event log. Null where the log no longer holds every change since then (it keeps EVENT_LOG_RETENTION, default an hour): never a guess.",
    }),
  }),
});

builder.queryField('jobThroughput', (t) =>
  t.field({
    type: [ThroughputBucket],
    description: `The tenant's last \`minutes\` minutes (1 to ${MAX_WINDOW_MINUTES}, default ${DEFAULT_WINDOW_MINUTES}), oldest first, every minute present: jobs finished per minute by status (a job counts once, at its latest finish) and the queue depth.`,
    args: { minutes: t.arg.int({ defaultValue: DEFAULT_WINDOW_MINUTES }) },
    resolve: (_root, args, ctx) => ctx.jobs.jobThroughput(args.minutes),
  }),
);
