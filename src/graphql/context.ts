import type { JobService } from '../jobs/job-service.ts';

/** What every resolver gets: the use cases, never a database handle. */
export type GraphQLContext = { jobs: JobService };
