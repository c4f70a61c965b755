import { randomUUID } from 'node:crypto';
import type { DatabasePool } from 'slonik';
import { findKind, kindNames } from '../kinds/registry.ts';
import { decodeCursor, encodeCursor } from './cursor.ts';
import { badUserInput } from './errors.ts';
import type { Job, JobStatus, JsonValue } from './job.ts';
import { findJobById, insertJob, listJobs } from './job-queries.ts';
import { findUnstorableString } from './json-check.ts';

// The use cases the API offers on jobs. Checks every input before any SQL runs, so a bad request costs
// nothing and leaves nothing behind; the SQL itself lives in job-queries.ts.

export const MAX_INPUT_BYTES = 1024 * 1024;
export const DEFAULT_PAGE_SIZE = 20;
export const MAX_PAGE_SIZE = 100;

const uuidShape = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function parseJobId(id: string, argument = 'id'): string {
  if (!uuidShape.test(id)) throw badUserInput(`${argument} must be a UUID`, { argument });
  return id.toLowerCase();
}

export type JobPage = {
  jobs: readonly Job[];
  cursors: readonly string[];
  hasNextPage: boolean;
};

export function createJobService(pool: DatabasePool) {
  return {
    parseId: (id: string) => parseJobId(id),

    async createJob(request: { kind: string; input: unknown }): Promise<Job> {
      const kind = findKind(request.kind);
      if (!kind) {
        throw badUserInput(`unknown job kind ${JSON.stringify(request.kind)}; known kinds: ${kindNames().join(', ')}`, {
          argument: 'input.kind',
          knownKinds: kindNames(),
        });
      }
      const input = request.input === undefined || request.input === null ? {} : request.input;
      const size = Buffer.byteLength(JSON.stringify(input), 'utf8');
      if (size > MAX_INPUT_BYTES) {
        throw badUserInput(`input is ${size} bytes; at most ${MAX_INPUT_BYTES} are accepted`, { argument: 'input.input' });
      }
      const unstorable = findUnstorableString(input);
      if (unstorable) {
        throw badUserInput('input contains a NUL character or an unpaired surrogate, which cannot be stored', {
          argument: 'input.input',
          path: unstorable,
        });
      }
      const checked = kind.input.safeParse(input);
      if (!checked.success) {
        const issue = checked.error.issues[0];
        const path = issue?.path.map(String) ?? [];
        throw badUserInput(
          `input does not match kind ${kind.name}: ${path.length ? `at ${path.join('.')}: ` : ''}${issue?.message ?? 'invalid'}`,
          { argument: 'input.input', path, issues: checked.error.issues.map((i) => ({ path: i.path.map(String), message: i.message })) },
        );
      }
      // The client's input is stored as sent (it was checked above); handlers get the parsed value.
      return insertJob(pool, { id: randomUUID(), kind: kind.name, input: input as JsonValue });
    },

    async getJob(id: string): Promise<Job | null> {
      return findJobById(pool, parseJobId(id));
    },

    async listJobs(args: {
      first?: number | null;
      after?: string | null;
      statuses?: readonly JobStatus[] | null;
      kind?: string | null;
    }): Promise<JobPage> {
      const first = args.first ?? DEFAULT_PAGE_SIZE;
      if (!Number.isInteger(first) || first < 1 || first > MAX_PAGE_SIZE) {
        throw badUserInput(`first must be between 1 and ${MAX_PAGE_SIZE}`, { argument: 'first' });
      }
      const after = args.after == null ? null : decodeCursor(args.after);
      const statuses = args.statuses && args.statuses.length > 0 ? args.statuses : null;
      const rows = await listJobs(pool, { statuses, kind: args.kind ?? null, after, limit: first });
      const jobs = rows.slice(0, first);
      return { jobs, cursors: jobs.map(encodeCursor), hasNextPage: rows.length > first };
    },
  };
}

export type JobService = ReturnType<typeof createJobService>;
