import type { JobService } from '../jobs/job-service.ts';
import type { LiveService } from '../live/live-service.ts';

/** What every resolver gets: the use cases, never a database handle. */
export type GraphQLContext = {
  jobs: JobService;
  live: LiveService;
  /** SSE's Last-Event-ID header, when the request carried one: where a reconnecting EventSource left off. */
  lastEventId: string | null;
};
