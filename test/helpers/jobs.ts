import { GetJobDocument, type JobFieldsFragment, type JobStatus } from '../generated/graphql.ts';
import { data } from './graphql.ts';
import { waitFor } from './wait.ts';

/** Polls job(id) on a server until the job has `status`, and returns it as the API answers it then. */
export async function waitForJobStatus(baseUrl: string, id: string, status: JobStatus, timeoutMs?: number): Promise<JobFieldsFragment> {
  return waitFor(
    `job ${id} to be ${status}`,
    async () => {
      const { job } = await data(baseUrl, GetJobDocument, { id });
      return job?.status === status ? job : undefined;
    },
    timeoutMs,
  );
}
