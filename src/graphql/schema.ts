import { type GraphQLSchema, lexicographicSortSchema, printSchema } from 'graphql';
import { builder } from './builder.ts';
import './scalars.ts';
import './job.ts';
import './kind.ts';
import './job-history.ts';
import './job-stats.ts';
import './throughput.ts';

let built: GraphQLSchema | null = null;

/** Builds the schema from the type files (once). The app calls it only after startup recovery has run. */
export function buildSchema(): GraphQLSchema {
  built ??= builder.toSchema();
  return built;
}

/** The schema as committed in schema.graphql: sorted, so that its diff shows only real changes. */
export function printSortedSchema(): string {
  return `${printSchema(lexicographicSortSchema(buildSchema()))}\n`;
}
