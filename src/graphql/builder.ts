import SchemaBuilder from '@pothos/core';
import type { Job, JsonValue } from '../jobs/job.ts';
import type { GraphQLContext } from './context.ts';

// The builder holds no types: each type lives in its own file with the fields that return it.
// Fields are non-null unless a field says otherwise, so generated client types carry no needless Maybe<>.
export const builder = new SchemaBuilder<{
  Context: GraphQLContext;
  DefaultFieldNullability: false;
  Scalars: {
    DateTime: { Input: string; Output: string };
    JSON: { Input: JsonValue; Output: JsonValue };
  };
  Objects: { Job: Job };
}>({ defaultFieldNullability: false });
