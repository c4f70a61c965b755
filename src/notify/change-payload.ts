/**
 * The change feed's channels and payloads. Migration 009 replaced the per-row notification on
 * `jobql_job_changed` (one JSON object per job) by one per statement on `jobql_jobs_changed` (a JSON array of
 * `[id, revision, status, kind, tenant, cancel 1/0]`, chunked under 7,000 bytes). The listener hears both, so
 * a process of this version works against a database before and after that migration.
 */
export const JOBS_CHANGED_CHANNEL = 'jobql_jobs_changed';
/** The per-row channel of migrations 002–004 (before 009). */
export const LEGACY_JOB_CHANGED_CHANNEL = 'jobql_job_changed';
export const CHANGE_CHANNELS = [JOBS_CHANGED_CHANNEL, LEGACY_JOB_CHANGED_CHANNEL] as const;

/** One job's change as the triggers announce it: ids and revisions only, never results (NOTIFY payloads are capped at 8000 bytes). */
export type JobChange = { id: string; revision: number; status: string; kind: string; tenant: string; cancel?: boolean };

/**
 * The job changes a notification announces, in payload order; [] for another channel or a payload that is not
 * what the triggers send (a NOTIFY anyone may send is never trusted to be well-formed: a bad entry is skipped).
 */
export function parseJobChanges(channel: string, payload: string | undefined): JobChange[] {
  if (!payload) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(payload);
  } catch {
    return [];
  }
  if (channel === JOBS_CHANGED_CHANNEL) {
    if (!Array.isArray(parsed)) return [];
    const changes: JobChange[] = [];
    for (const entry of parsed) {
      const change = fromEntry(entry);
      if (change) changes.push(change);
    }
    return changes;
  }
  if (channel === LEGACY_JOB_CHANGED_CHANNEL) {
    const change = fromLegacyObject(parsed);
    return change ? [change] : [];
  }
  return [];
}

/** `[id, revision, status, kind, tenant, cancel]`, as jobs_change_entry (migration 009) writes it. */
function fromEntry(entry: unknown): JobChange | null {
  if (!Array.isArray(entry) || entry.length < 6) return null;
  const [id, revision, status, kind, tenant, cancel] = entry as unknown[];
  return checked({ id, revision, status, kind, tenant }, cancel === 1 || cancel === true);
}

/** `{ id, revision, status, kind, tenant, cancel }`, as jobs_record_change (migrations 002–004) wrote it. */
function fromLegacyObject(value: unknown): JobChange | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  const { id, revision, status, kind, tenant, cancel } = value as Record<string, unknown>;
  return checked({ id, revision, status, kind, tenant }, cancel === true);
}

/** The change, if each field has the type the triggers write; else null. */
function checked(fields: Record<keyof Omit<JobChange, 'cancel'>, unknown>, cancel: boolean): JobChange | null {
  const { id, revision, status, kind, tenant } = fields;
  if (typeof id !== 'string' || typeof revision !== 'number' || typeof status !== 'string') return null;
  if (typeof kind !== 'string' || typeof tenant !== 'string') return null;
  return { id, revision, status, kind, tenant, cancel };
}
