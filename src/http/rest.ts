import type { ServerResponse } from 'node:http';
import { type ExecutionResult, execute, type GraphQLSchema, parse } from 'graphql';
import type { GraphQLContext } from '../graphql/context.ts';
import { maskError } from '../graphql/errors.ts';
import { JobqlError } from '../jobs/errors.ts';
import { sendError, sendJson } from './respond.ts';

// GET /jobs/{id} answers through the GraphQL schema itself, so its field names and values are exactly
// those of the GraphQL Job type (same scalars, same error codes), with no second serializer to drift.
const jobDocument = parse(`
  query RestJob($id: ID!) {
    job(id: $id) {
      id kind status input result error { code message } lastError { code message } progress attempt maxAttempts priority
      timeoutMs revision idempotencyKey createdAt updatedAt startedAt finishedAt runAt cancelRequestedAt
    }
  }`);

const statusByCode: Record<string, number> = { BAD_USER_INPUT: 400, NOT_FOUND: 404, CONFLICT: 409, SERVICE_UNAVAILABLE: 503 };

export async function handleGetJob(id: string, schema: GraphQLSchema, context: GraphQLContext, res: ServerResponse): Promise<void> {
  const result = (await execute({ schema, document: jobDocument, variableValues: { id }, contextValue: context })) as ExecutionResult;
  // A stored input or result too deep to send is null in the job, as in GraphQL; the rest of the job answers.
  const error = result.errors?.find(
    (error) => !(error.originalError instanceof JobqlError && error.originalError.code === 'UNREADABLE_JSON'),
  );
  if (error) {
    const masked = maskError(error, 'Unexpected error.');
    const extensions = (masked as { extensions?: { code?: unknown; retryAfterSeconds?: unknown } }).extensions;
    const code = String(extensions?.code ?? 'INTERNAL_SERVER_ERROR');
    if (typeof extensions?.retryAfterSeconds === 'number') res.setHeader('retry-after', String(extensions.retryAfterSeconds));
    return sendError(res, statusByCode[code] ?? 500, code, masked.message);
  }
  const job = (result.data as { job: unknown } | undefined)?.job;
  if (!job) return sendError(res, 404, 'NOT_FOUND', `no job with id ${id}`);
  sendJson(res, 200, job);
}
