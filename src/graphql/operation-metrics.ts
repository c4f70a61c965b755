import {
  type DocumentNode,
  type GraphQLError,
  type GraphQLSchema,
  getOperationAST,
  Kind,
  type OperationDefinitionNode,
  type SelectionSetNode,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { Metrics } from '../metrics/metrics.ts';
import { isClientError } from './errors.ts';

type Outcome = 'ok' | 'client_error' | 'internal_error';

function outcomeOf(errors: readonly GraphQLError[] | undefined): Outcome {
  if (!errors || errors.length === 0) return 'ok';
  return errors.every(isClientError) ? 'client_error' : 'internal_error';
}

/** The schema's root fields (createJob, job, jobUpdated, …): the only operation labels besides the fixed ones. */
function rootFieldsOf(schema: GraphQLSchema): Set<string> {
  const roots = [schema.getQueryType(), schema.getMutationType(), schema.getSubscriptionType()];
  return new Set(roots.flatMap((type) => (type ? Object.keys(type.getFields()) : [])));
}

/** The names of the fields an operation selects at its root, through fragments. */
function rootFieldNames(selectionSet: SelectionSetNode, document: DocumentNode, names: Set<string>, seen: Set<string>): Set<string> {
  for (const selection of selectionSet.selections) {
    if (selection.kind === Kind.FIELD) names.add(selection.name.value);
    else if (selection.kind === Kind.INLINE_FRAGMENT) rootFieldNames(selection.selectionSet, document, names, seen);
    else if (!seen.has(selection.name.value)) {
      seen.add(selection.name.value);
      const fragment = document.definitions.find(
        (definition) => definition.kind === Kind.FRAGMENT_DEFINITION && definition.name.value === selection.name.value,
      );
      if (fragment?.kind === Kind.FRAGMENT_DEFINITION) rootFieldNames(fragment.selectionSet, document, names, seen);
    }
  }
  return names;
}

/**
 * The operation's label: the schema root field it selects (`createJob`), `introspection` when it selects only
 * `__schema`/`__type`, else `other` (several root fields, or none that the schema knows). Never the client's
 * operation name: a tenant chooses that freely (`CreateInvoiceForAcmeCorpCustomer4711`), and anyone who can
 * scrape the metrics would read it. Root fields are few, fixed by the schema, and name what was done.
 */
function labelOf(operation: OperationDefinitionNode | null | undefined, document: DocumentNode, rootFields: Set<string>): string {
  if (!operation) return 'other';
  const names = rootFieldNames(operation.selectionSet, document, new Set(), new Set());
  names.delete('__typename');
  if (names.size > 0 && [...names].every((name) => name === '__schema' || name === '__type')) return 'introspection';
  const [only] = names;
  return names.size === 1 && only !== undefined && rootFields.has(only) ? only : 'other';
}

function describe(document: DocumentNode, rootFields: Set<string>, operationName?: string | null) {
  const operation = getOperationAST(document, operationName);
  return { label: labelOf(operation, document, rootFields), type: operation?.operation ?? 'unknown' };
}

/**
 * Counts every GraphQL operation by root field, type and outcome, and times queries and mutations. An envelop
 * plugin, so HTTP, SSE and graphql-ws operations (all run through Yoga's envelop) are counted alike; one
 * that fails to parse or validate is a client error under the label "invalid".
 */
export function operationMetrics(metrics: Metrics, schema: GraphQLSchema): Plugin {
  const rootFields = rootFieldsOf(schema);
  return {
    onParse() {
      return ({ result }) => {
        if (result instanceof Error) metrics.graphqlOperation('invalid', 'unknown', 'invalid');
      };
    },
    onValidate({ params }) {
      return ({ valid }) => {
        if (valid) return;
        const { type } = describe(params.documentAST, rootFields);
        metrics.graphqlOperation('invalid', type, 'invalid');
      };
    },
    onExecute({ args }) {
      const started = performance.now();
      const { label, type } = describe(args.document, rootFields, args.operationName);
      return {
        onExecuteDone({ result }) {
          // A streamed result (@defer) is counted as it starts.
          const errors = 'errors' in result ? result.errors : undefined;
          metrics.graphqlOperation(label, type, outcomeOf(errors), (performance.now() - started) / 1000);
        },
      };
    },
    onSubscribe({ args }) {
      const { label } = describe(args.document, rootFields, args.operationName);
      return {
        // Counted once, as the subscription starts or fails to (NOT_FOUND, MAX_SUBSCRIPTIONS' LIMIT_EXCEEDED, …).
        // graphql-ws's per-connection cap refuses an operation before it reaches envelop: not counted here.
        onSubscribeResult({ result }) {
          const errors = 'errors' in result ? (result.errors as readonly GraphQLError[] | undefined) : undefined;
          metrics.graphqlOperation(label, 'subscription', outcomeOf(errors));
        },
      };
    },
  };
}
