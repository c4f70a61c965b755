import {
  type ASTVisitor,
  type FieldNode,
  type FragmentDefinitionNode,
  GraphQLError,
  Kind,
  NoSchemaIntrospectionCustomRule,
  type SelectionSetNode,
  type ValidationContext,
} from 'graphql';

// Limits on the shape of an operation, checked at validation, before anything executes: a query nested or
// aliased without bound could make the server do unbounded work for one request.
export const MAX_DEPTH = 12;
export const MAX_ALIASES = 30;
export const MAX_FIELDS = 500;

type Counts = { depth: number; aliases: number; fields: number };

function measure(
  selectionSet: SelectionSetNode,
  fragments: Map<string, FragmentDefinitionNode>,
  depth: number,
  seen: Set<string>,
  counts: Counts,
) {
  counts.depth = Math.max(counts.depth, depth);
  // Stop counting once over a limit: fragments spread inside fragments could otherwise make the count itself
  // take exponential time.
  if (counts.depth > MAX_DEPTH || counts.fields > MAX_FIELDS || counts.aliases > MAX_ALIASES) return;
  for (const selection of selectionSet.selections) {
    if (selection.kind === Kind.FIELD) {
      counts.fields++;
      if ((selection as FieldNode).alias) counts.aliases++;
      if (selection.selectionSet) measure(selection.selectionSet, fragments, depth + 1, seen, counts);
    } else if (selection.kind === Kind.INLINE_FRAGMENT) {
      measure(selection.selectionSet, fragments, depth, seen, counts);
    } else {
      const fragment = fragments.get(selection.name.value);
      // A fragment spread twice is counted twice (it is executed twice); a cycle is the validator's to report.
      if (fragment && !seen.has(fragment.name.value)) {
        seen.add(fragment.name.value);
        measure(fragment.selectionSet, fragments, depth, seen, counts);
        seen.delete(fragment.name.value);
      }
    }
  }
}

/** A validation rule: each operation's depth, aliases and field count stay within the limits. */
export function operationLimitsRule(context: ValidationContext): ASTVisitor {
  const document = context.getDocument();
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  }
  return {
    OperationDefinition(operation) {
      const counts: Counts = { depth: 0, aliases: 0, fields: 0 };
      measure(operation.selectionSet, fragments, 1, new Set(), counts);
      const over = [
        counts.depth > MAX_DEPTH && `nested ${counts.depth} deep (at most ${MAX_DEPTH})`,
        counts.aliases > MAX_ALIASES && `${counts.aliases} aliases (at most ${MAX_ALIASES})`,
        counts.fields > MAX_FIELDS && `${counts.fields} fields (at most ${MAX_FIELDS})`,
      ].filter(Boolean);
      if (over.length > 0) {
        context.reportError(
          new GraphQLError(`the operation is too large: ${over.join(', ')}`, {
            nodes: [operation],
            extensions: { code: 'QUERY_TOO_COMPLEX' },
          }),
        );
      }
    },
  };
}

/** The validation rules every operation gets, HTTP and WebSocket alike (a Yoga plugin). */
export function operationLimits(options: { introspection: boolean }) {
  return {
    onValidate({ addValidationRule }: { addValidationRule: (rule: unknown) => void }) {
      addValidationRule(operationLimitsRule);
      if (!options.introspection) addValidationRule(NoSchemaIntrospectionCustomRule);
    },
  };
}
