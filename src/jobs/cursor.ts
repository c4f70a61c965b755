import { badUserInput } from './errors.ts';

// Keyset cursor of the jobs list: the full-precision created_at (microseconds) and the id, so that jobs
// created in the same millisecond are neither skipped nor repeated. Opaque to clients (base64url).
export type JobCursor = { createdAt: string; id: string };

const shape = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)\|([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;

export function encodeCursor(job: JobCursor): string {
  return Buffer.from(`${job.createdAt}|${job.id}`, 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string): JobCursor {
  const match = shape.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!match || Number.isNaN(Date.parse(match[1] ?? ''))) {
    throw badUserInput('after is not a cursor returned by this API', { argument: 'after' });
  }
  return { createdAt: match[1] as string, id: match[2] as string };
}
