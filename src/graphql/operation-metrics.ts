import { type DocumentNode, type GraphQLError, getOperationAST } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { Metrics } from '../metrics/metrics.ts';
import { isClientError } from './errors.ts';

type Outcome = 'ok' | 'client_error' | 'internal_error';

function outcomeOf(errors: readonly GraphQLError[] | undefined): Outcome {
  if (!errors || errors.length === 0) return 'ok';
  return errors.every(isClientError) ? 'client_error' : 'internal_error';
}

function describe(document: DocumentNode, operationName?: string | null) {
  const operation = getOperationAST(document, operationName);
  return { name: operation?.name?.value ?? null, type: operation?.operation ?? 'unknown' };
}

/**
 * Counts every GraphQL operation by name, type and outcome, and times queries and mutations. An envelop
 * plugin, so HTTP, SSE and graphql-ws operations (all run through Yoga's envelop) are counted alike; one
 * that fails to parse or validate is a client error under the operation name "invalid".
 */
export function operationMetrics(metrics: Metrics): Plugin {
  return {
    onParse() {
      return ({ result }) => {
        if (result instanceof Error) metrics.graphqlOperation(null, 'unknown', 'invalid');
      };
    },
    onValidate({ params }) {
      return ({ valid }) => {
        if (valid) return;
        const { name, type } = describe(params.documentAST);
        metrics.graphqlOperation(name, type, 'invalid');
      };
    },
    onExecute({ args }) {
      const started = performance.now();
      const { name, type } = describe(args.document, args.operationName);
      return {
        onExecuteDone({ result }) {
          // A streamed result (@defer) is counted as it starts.
          const errors = 'errors' in result ? result.errors : undefined;
          metrics.graphqlOperation(name, type, outcomeOf(errors), (performance.now() - started) / 1000);
        },
      };
    },
    onSubscribe({ args }) {
      const { name } = describe(args.document, args.operationName);
      return {
        // Counted once, as the subscription starts or fails to (NOT_FOUND, MAX_SUBSCRIPTIONS' LIMIT_EXCEEDED, …).
        // graphql-ws's per-connection cap refuses an operation before it reaches envelop: not counted here.
        onSubscribeResult({ result }) {
          const errors = 'errors' in result ? (result.errors as readonly GraphQLError[] | undefined) : undefined;
          metrics.graphqlOperation(name, 'subscription', outcomeOf(errors));
        },
      };
    },
  };
}
