import { lexicographicSortSchema, printSchema } from 'graphql';
import { builder } from './builder.ts';
import './scalars.ts';
import './job.ts';

export const schema = builder.toSchema();

/** The schema as committed in schema.graphql: sorted, so that its diff shows only real changes. */
export function printSortedSchema(): string {
  return `${printSchema(lexicographicSortSchema(schema))}\n`;
}
