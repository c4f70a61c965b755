import {
  type ASTVisitor,
  type FieldNode,
  type FragmentDefinitionNode,
  GraphQLError,
  Kind,
  Lexer,
  NoSchemaIntrospectionCustomRule,
  type SelectionSetNode,
  Source,
  TokenKind,
  type ValidationContext,
} from 'graphql';
import { MAX_JSON_DEPTH } from '../jobs/json-check.ts';

// Limits on the shape of an operation, checked at validation, before anything executes: a query nested or
// aliased without bound could make the server do unbounded work for one request.
export const MAX_DEPTH = 12;
export const MAX_ALIASES = 30;
export const MAX_FIELDS = 500;

/**
 * How deeply brackets ({, [, () may nest in a document: room for an operation at MAX_DEPTH with an input
 * literal of MAX_JSON_DEPTH (which createJob then checks itself). graphql-js parses a document, and turns an
 * input literal into a value, by recursion: a literal nested a few thousand levels deep overflowed the stack
 * and answered INTERNAL_SERVER_ERROR, or not, depending on the process.
 */
export const MAX_DOCUMENT_NESTING = MAX_JSON_DEPTH + 2 * MAX_DEPTH + 8;

/** The deepest bracket nesting in `text`, counted on the lexer's tokens (iterative; strings and comments skipped). */
function bracketNesting(text: string, stopAbove: number): number {
  const lexer = new Lexer(new Source(text));
  let depth = 0;
  let deepest = 0;
  try {
    for (let token = lexer.advance(); token.kind !== TokenKind.EOF; token = lexer.advance()) {
      if (token.kind === TokenKind.BRACE_L || token.kind === TokenKind.BRACKET_L || token.kind === TokenKind.PAREN_L) {
        deepest = Math.max(deepest, ++depth);
        if (deepest > stopAbove) break;
      } else if (token.kind === TokenKind.BRACE_R || token.kind === TokenKind.BRACKET_R || token.kind === TokenKind.PAREN_R) {
        depth--;
      }
    }
  } catch {
    // A syntax error: the parser reports it.
  }
  return deepest;
}

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

type ParseFn = (source: string | Source, options?: unknown) => unknown;

/** The limits every operation gets, HTTP and WebSocket alike (a Yoga plugin): nesting before parse, then validation rules. */
export function operationLimits(options: { introspection: boolean }) {
  return {
    // Wraps the parser, so a document the parse cache already holds is not scanned again.
    onParse({ parseFn, setParseFn }: { parseFn: ParseFn; setParseFn: (fn: ParseFn) => void }) {
      setParseFn((source, parseOptions) => {
        const text = typeof source === 'string' ? source : source.body;
        const nesting = bracketNesting(text, MAX_DOCUMENT_NESTING);
        if (nesting > MAX_DOCUMENT_NESTING) {
          throw new GraphQLError(`the document nests brackets more than ${MAX_DOCUMENT_NESTING} deep`, {
            extensions: { code: 'QUERY_TOO_COMPLEX' },
          });
        }
        return parseFn(source, parseOptions);
      });
    },
    onValidate({ addValidationRule }: { addValidationRule: (rule: unknown) => void }) {
      addValidationRule(operationLimitsRule);
      if (!options.introspection) addValidationRule(NoSchemaIntrospectionCustomRule);
    },
  };
}
