import { GetJobDocument, type JobFieldsFragment, type JobStatus } from '../generated/graphql.ts';
import { data } from './graphql.ts';
import { waitFor } from './wait.ts';

export const FINISHED: JobStatus[] = ['COMPLETED', 'FAILED', 'CANCELLED'];

/**
 * Polls job(id) on a server until the job has one of `statuses`, and returns it as the API answers it then.
 * The one poll-until-status helper: every test that waits for a job's status through the API uses it. `where`
 * narrows what counts (a RUNNING job that has reported progress); `headers` carry a tenant's API key.
 */
export async function waitForJob(
  baseUrl: string,
  id: string,
  statuses: JobStatus | readonly JobStatus[],
  options: { timeoutMs?: number; headers?: Record<string, string>; where?: (job: JobFieldsFragment) => boolean } = {},
): Promise<JobFieldsFragment> {
  const wanted: readonly JobStatus[] = typeof statuses === 'string' ? [statuses] : statuses;
  return waitFor(
    `job ${id} to be ${wanted.join(' or ')}`,
    async () => {
      const { job } = await data(baseUrl, GetJobDocument, { id }, options.headers);
      return job && wanted.includes(job.status) && (options.where?.(job) ?? true) ? job : undefined;
    },
    options.timeoutMs,
  );
}
