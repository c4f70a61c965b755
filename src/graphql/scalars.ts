import { GraphQLError, Kind, valueFromASTUntyped } from 'graphql';
import type { JsonValue } from '../jobs/job.ts';
import { builder } from './builder.ts';

builder.scalarType('DateTime', {
  description: 'A point in time as an ISO-8601 string in UTC with microseconds, e.g. 2026-11-28T12:51:17.123456Z.',
  // Job timestamps already leave SQL in this form (see jobColumns), so output passes them through.
  serialize: (value) => value,
  parseValue: (value) => parseDateTime(value),
  parseLiteral: (ast) => parseDateTime(ast.kind === Kind.STRING ? ast.value : undefined),
});

function parseDateTime(value: unknown): string {
  if (typeof value !== 'string' || Number.isNaN(Date.parse(value))) {
    throw new GraphQLError('DateTime must be an ISO-8601 string', { extensions: { code: 'BAD_USER_INPUT' } });
  }
  const iso = new Date(value).toISOString();
  // Years past 9999 (or before year 1) come out as "+010000-…": no ISO-8601 basic form, and PostgreSQL refuses
  // them, so they are the client's error here rather than a failed insert later.
  if (!/^\d{4}-/.test(iso) || iso.startsWith('0000-')) {
    throw new GraphQLError('DateTime must be between years 0001 and 9999', { extensions: { code: 'BAD_USER_INPUT' } });
  }
  return iso;
}

builder.scalarType('JSON', {
  description: 'Any JSON value.',
  serialize: (value) => value,
  parseValue: (value) => value as JsonValue,
  parseLiteral: (ast, variables) => valueFromASTUntyped(ast, variables) as JsonValue,
});
