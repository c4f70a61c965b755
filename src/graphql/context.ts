import type { JobService } from '../jobs/job-service.ts';
import type { LiveService } from '../live/live-service.ts';

/** What every resolver gets: the use cases, never a database handle. */
export type GraphQLContext = {
  jobs: JobService;
  live: LiveService;
  /** SSE's Last-Event-ID header, when the request carried one: where a reconnecting EventSource left off. */
  lastEventId: string | null;
  /** The revision of the job event last produced on this request's stream, for SSE's `id:` line. */
  stream: { revision: number | null };
};
