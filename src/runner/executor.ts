import { FailureCode } from '../jobs/failure-codes.ts';
import { type Job, type JsonValue, UnreadableJson } from '../jobs/job.ts';
import { findUnstorableString, MAX_JSON_DEPTH, nestsDeeperThan } from '../jobs/json-check.ts';
import { JobFailure, type JobKind } from '../kinds/kind.ts';

/** Why a running job's AbortSignal fired: the code and message its attempt ends with. */
export type StopReason = { code: typeof FailureCode.INTERRUPTED | typeof FailureCode.TIMEOUT | 'CANCELLED'; message: string };
export const CANCELLED: StopReason = { code: 'CANCELLED', message: 'the job was cancelled' };
const timedOut = (ms: number): StopReason => ({ code: FailureCode.TIMEOUT, message: `the job ran longer than its timeout of ${ms} ms` });

/** How an attempt ended here. `final`: it can never succeed (BAD_INPUT), so it ends FAILED whatever attempts are left. */
export type Outcome = { result: JsonValue } | { error: { code: string; message: string }; final?: boolean };

/**
 * Runs one claimed job's handler and says how the attempt ended; writes nothing (the completer does). The
 * job's timeout aborts `controller` with TIMEOUT; whoever else aborts it (cancel, stop) gives the reason.
 */
export async function executeAttempt(
  job: Job,
  options: { kind: JobKind | undefined; controller: AbortController; abortGraceMs: number; progress: (fraction: number) => void },
): Promise<Outcome> {
  const { controller } = options;
  const { signal } = controller;
  const { kind } = options;
  const timeoutMs = job.timeoutMs ?? kind?.timeoutMs ?? null;
  const timeout = timeoutMs === null ? null : setTimeout(() => controller.abort(timedOut(timeoutMs)), timeoutMs);
  const handled = (async (): Promise<Outcome> => {
    try {
      if (!kind) throw new JobFailure(FailureCode.UNKNOWN_KIND, `no handler for kind ${job.kind} in this process`);
      const input = readInput(job, kind);
      if ('error' in input) return { error: input.error, final: true };
      const result = await kind.handler(input.value, { jobId: job.id, attempt: job.attempt, signal, progress: options.progress });
      return { result: toStorableResult(result) };
    } catch (error) {
      return { error: describeFailure(error, signal) };
    }
  })();
  // A handler that ignores its signal cannot keep the slot: after abortGraceMs the attempt ends anyway (with
  // the signal's reason) and the slot is free; whatever the handler does later is refused by the claim guard.
  let abandon: NodeJS.Timeout | null = null;
  const abandoned = new Promise<Outcome>((resolve) => {
    const giveUp = () => {
      abandon = setTimeout(() => resolve({ error: signal.reason as StopReason }), options.abortGraceMs);
    };
    if (signal.aborted) giveUp();
    else signal.addEventListener('abort', giveUp, { once: true });
  });
  const outcome = await Promise.race([handled, abandoned]);
  if (timeout) clearTimeout(timeout);
  if (abandon) clearTimeout(abandon);
  return outcome;
}

/**
 * The input the kind's handler gets, or why the job can never run: a stored input too deep to read, or one
 * its kind's schema rejects (written by SQL, or before the kind's schema changed). Such a job ends FAILED with
 * BAD_INPUT rather than being held: every other job of the same claim runs as usual.
 */
function readInput(job: Job, kind: JobKind): { value: unknown } | { error: { code: typeof FailureCode.BAD_INPUT; message: string } } {
  if (job.input instanceof UnreadableJson)
    return { error: { code: FailureCode.BAD_INPUT, message: `the job's input is ${job.input.message}` } };
  const checked = kind.input.safeParse(job.input);
  if (checked.success) return { value: checked.data };
  const issue = checked.error.issues[0];
  const at = issue && issue.path.length > 0 ? `at ${issue.path.map(String).join('.')}: ` : '';
  return {
    error: {
      code: FailureCode.BAD_INPUT,
      message: `the job's input does not match kind ${kind.name}: ${at}${issue?.message ?? 'invalid'}`,
    },
  };
}

function toStorableResult(result: JsonValue | undefined): JsonValue {
  if (result === undefined) return null;
  // Before JSON.stringify recurses into it, and so that every stored result can be read back.
  if (nestsDeeperThan(result, MAX_JSON_DEPTH)) {
    throw new JobFailure(FailureCode.INVALID_RESULT, `the handler returned a result nested deeper than ${MAX_JSON_DEPTH} levels`);
  }
  let copy: JsonValue;
  try {
    copy = JSON.parse(JSON.stringify(result)) as JsonValue;
  } catch (error) {
    throw new JobFailure(FailureCode.INVALID_RESULT, `the handler returned a result that is not JSON: ${(error as Error).message}`);
  }
  if (findUnstorableString(copy)) {
    throw new JobFailure(FailureCode.INVALID_RESULT, 'the handler returned a string with a NUL character or an unpaired surrogate');
  }
  return copy;
}

function describeFailure(error: unknown, signal: AbortSignal): { code: string; message: string } {
  if (signal.aborted) return signal.reason as StopReason;
  // Only a JobFailure chooses its code: a stray `code` on other errors (ECONNREFUSED, …) is not part of the API.
  const code = error instanceof JobFailure ? error.code : FailureCode.JOB_FAILED;
  const message = error instanceof Error ? error.message : String(error);
  return { code, message: message || 'the handler failed without a message' };
}
