// Errors a client can act on. Each carries the code that graphql/errors.ts puts in extensions.code and
// that the REST routes turn into a status; anything that is not a JobqlError is unexpected and masked.
export type ErrorCode = 'BAD_USER_INPUT' | 'NOT_FOUND' | 'CONFLICT' | 'LIMIT_EXCEEDED' | 'UNAVAILABLE' | 'UNREADABLE_JSON';

export class JobqlError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.name = 'JobqlError';
    this.code = code;
    this.details = details;
  }
}

export const badUserInput = (message: string, details?: Record<string, unknown>) => new JobqlError('BAD_USER_INPUT', message, details);
