/**
 * The codes jobql itself stores in a failed attempt's `error_code` (a handler's own JobFailure may use any
 * other code). One list, used by the runner, the SQL that ends attempts, and the schema's JobError.code
 * description, so that a code and its meaning are written once.
 */
export const failureCodeMeanings = {
  /** The handler threw something that is not a JobFailure. */
  JOB_FAILED: 'the handler threw',
  /** The process running it stopped (graceful stop past the grace period, lost worker session, crash). */
  INTERRUPTED: 'the process running it stopped before it finished',
  /** It ran past its timeoutMs. */
  TIMEOUT: 'it ran past its timeoutMs',
  /** The handler returned something that is not storable JSON, or that nests too deep. */
  INVALID_RESULT: 'the handler returned a result that cannot be stored',
  /** The stored input cannot be used: too deep to read, or rejected by its kind's schema. Not retried. */
  BAD_INPUT: "the stored input cannot be used (too deep, or rejected by its kind's schema); not retried",
  /** The process that claimed it has no handler for its kind. */
  UNKNOWN_KIND: 'the process that claimed it has no handler for its kind',
} as const;

export type FailureCode = keyof typeof failureCodeMeanings;

/** Each code by name (`FailureCode.TIMEOUT`), so that no file spells one as a loose string. */
export const FailureCode = Object.fromEntries(Object.keys(failureCodeMeanings).map((code) => [code, code])) as {
  readonly [C in FailureCode]: C;
};
