import type { KindDescription } from '../kinds/registry.ts';
import { builder } from './builder.ts';

// The kinds a server runs, so that clients and a dashboard can build forms and show defaults.

const KindSchedule = builder.objectRef<KindDescription['schedules'][number]>('KindSchedule').implement({
  description: 'One recurring entry of a kind: each tick of its cron expression creates one job of the kind.',
  fields: (t) => ({
    cron: t.exposeString('cron', { description: 'Standard 5-field cron, or 6 fields with seconds first.' }),
    timezone: t.exposeString('timezone', { description: 'The IANA time zone the expression is read in.' }),
    catchUp: t.exposeBoolean('catchUp', {
      description: 'Whether ticks missed while no process ran are created later (the most recent 100 at most).',
    }),
  }),
});

const JobKind = builder.objectRef<KindDescription>('JobKind').implement({
  description: 'A kind of job this server runs.',
  fields: (t) => ({
    name: t.exposeString('name'),
    inputSchema: t.field({
      type: 'JSON',
      nullable: true,
      description: "The kind's input as JSON Schema (draft 2020-12), from its zod schema; null when zod cannot express it.",
      resolve: (kind) => kind.inputSchema as never,
    }),
    timeoutMs: t.exposeInt('timeoutMs', {
      nullable: true,
      description: "The default timeout of this kind's jobs (a job's own timeoutMs wins); null: none.",
    }),
    maxAttempts: t.exposeInt('maxAttempts', { description: "The default attempts of this kind's jobs (a job's own maxAttempts wins)." }),
    retryBackoffMs: t.exposeInt('retryBackoffMs', {
      nullable: true,
      description: "The base of the backoff between this kind's attempts; null: the server's RETRY_BACKOFF_MS.",
    }),
    concurrency: t.exposeInt('concurrency', {
      nullable: true,
      description: 'The most jobs of this kind one process runs at once; null: only the process total (WORKER_CONCURRENCY).',
    }),
    schedules: t.field({
      type: [KindSchedule],
      description: "The kind's recurring entries (empty: none).",
      resolve: (kind) => kind.schedules,
    }),
  }),
});

builder.queryField('kinds', (t) =>
  t.field({
    type: [JobKind],
    description: 'The kinds of job this server runs, by name.',
    resolve: (_root, _args, ctx) => ctx.jobs.listKinds(),
  }),
);
