import {
  type FieldNode,
  type FragmentDefinitionNode,
  GraphQLError,
  Kind,
  Lexer,
  NoSchemaIntrospectionCustomRule,
  type SelectionSetNode,
  Source,
  TokenKind,
  type ValidationRule,
  type validate,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';
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

// Introspection (`__schema`/`__type` at the root of an operation, and only while introspection is enabled) is
// measured by its own depth rule: the standard introspection query, graphql's getIntrospectionQuery() and
// GraphiQL's, is nested 15 deep, almost all of it the `ofType { ofType { … } }` chain that unwraps a type
// like `[Job!]!`. Such a chain returns one object per level, so it costs what its fields cost, and those are
// still counted against MAX_FIELDS and MAX_ALIASES. What multiplies work is a list inside a list (`types {
// fields { type { fields … } } }`): under `__schema`/`__type` only the list-valued fields count as a level,
// and at most MAX_INTROSPECTION_LISTS are nested (the standard query nests `types { fields { args } }`, 3).
// Every other selection of the same operation is measured as before, so naming `__schema` beside a deep
// selection does not exempt it.
export const MAX_INTROSPECTION_LISTS = 3;
const introspectionRoots = new Set(['__schema', '__type']);
// The list-valued fields of the introspection types (__Schema, __Type, __Field, __Directive), as the GraphQL
// specification defines them; `locations` is a list of enum values, a leaf.
const introspectionLists = new Set(['types', 'directives', 'fields', 'args', 'inputFields', 'interfaces', 'possibleTypes', 'enumValues']);

type Counts = { depth: number; introspectionLists: number; aliases: number; fields: number };
type Walk = { fragments: Map<string, FragmentDefinitionNode>; introspection: boolean; seen: Set<string>; counts: Counts };
/** Where a selection set sits: its depth, and inside introspection, how many lists enclose it (else null). */
type Level = { depth: number; lists: number | null };

function isOver(counts: Counts): boolean {
  return (
    counts.depth > MAX_DEPTH ||
    counts.introspectionLists > MAX_INTROSPECTION_LISTS ||
    counts.fields > MAX_FIELDS ||
    counts.aliases > MAX_ALIASES
  );
}

/** The level of a field's own selection set. */
function levelBelow(field: FieldNode, level: Level, walk: Walk): Level {
  const name = field.name.value;
  if (level.lists !== null) return { depth: level.depth, lists: level.lists + (introspectionLists.has(name) ? 1 : 0) };
  if (walk.introspection && level.depth === 1 && introspectionRoots.has(name)) return { depth: level.depth, lists: 0 };
  return { depth: level.depth + 1, lists: null };
}

function measure(selectionSet: SelectionSetNode, level: Level, walk: Walk) {
  const { counts, fragments, seen } = walk;
  if (level.lists === null) counts.depth = Math.max(counts.depth, level.depth);
  else counts.introspectionLists = Math.max(counts.introspectionLists, level.lists);
  // Stop counting once over a limit: fragments spread inside fragments could otherwise make the count itself
  // take exponential time.
  if (isOver(counts)) return;
  for (const selection of selectionSet.selections) {
    if (selection.kind === Kind.FIELD) {
      counts.fields++;
      if (selection.alias) counts.aliases++;
      if (selection.selectionSet) measure(selection.selectionSet, levelBelow(selection, level, walk), walk);
    } else if (selection.kind === Kind.INLINE_FRAGMENT) {
      measure(selection.selectionSet, level, walk);
    } else {
      const fragment = fragments.get(selection.name.value);
      // A fragment spread twice is counted twice (it is executed twice); a cycle is the validator's to report.
      if (fragment && !seen.has(fragment.name.value)) {
        seen.add(fragment.name.value);
        measure(fragment.selectionSet, level, walk);
        seen.delete(fragment.name.value);
      }
    }
  }
}

/**
 * A validation rule: each operation's depth, aliases and field count stay within the limits. With
 * `introspection`, selections under a root `__schema`/`__type` are measured by MAX_INTROSPECTION_LISTS instead of
 * MAX_DEPTH; without it they are measured like any other field (and refused by NoSchemaIntrospectionCustomRule).
 */
export function operationLimitsRule(options: { introspection: boolean }): ValidationRule {
  return (context) => {
    const document = context.getDocument();
    const fragments = new Map<string, FragmentDefinitionNode>();
    for (const definition of document.definitions) {
      if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
    }
    return {
      OperationDefinition(operation) {
        const counts: Counts = { depth: 0, introspectionLists: 0, aliases: 0, fields: 0 };
        measure(
          operation.selectionSet,
          { depth: 1, lists: null },
          { fragments, introspection: options.introspection, seen: new Set(), counts },
        );
        const over = [
          counts.depth > MAX_DEPTH && `nested ${counts.depth} deep (at most ${MAX_DEPTH})`,
          counts.introspectionLists > MAX_INTROSPECTION_LISTS &&
            `introspection lists nested ${counts.introspectionLists} deep (at most ${MAX_INTROSPECTION_LISTS})`,
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
  };
}

/**
 * The validation rules every operation gets, HTTP and WebSocket alike (a Yoga plugin). Without introspection
 * the schema is not for clients to discover, so errors stop suggesting names (`Did you mean "job"?`) too: at
 * validation (fields, arguments, types) and at execution (enum values of variables).
 */
export function operationLimits(options: { introspection: boolean }): Plugin {
  const limits = operationLimitsRule(options);
  const hideSuggestions = !options.introspection;
  return {
    // Wraps the parser, so a document the parse cache already holds is not scanned again.
    onParse({ parseFn, setParseFn }) {
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
    onValidate({ addValidationRule, setValidationFn, validateFn }) {
      addValidationRule(limits);
      if (!hideSuggestions) return;
      addValidationRule(NoSchemaIntrospectionCustomRule);
      // Envelop calls validate(schema, document, rules, typeInfo, options); graphql 17 takes the options fourth.
      setValidationFn((schema, document, rules) => (validateFn as typeof validate)(schema, document, rules, { hideSuggestions }));
    },
    // Yoga's executor (@graphql-tools/executor) takes hideSuggestions as graphql 17 does; envelop's type of the
    // arguments predates it.
    onExecute({ executeFn, setExecuteFn }) {
      if (hideSuggestions) setExecuteFn((args) => executeFn({ ...args, hideSuggestions } as typeof args));
    },
    onSubscribe({ subscribeFn, setSubscribeFn }) {
      if (hideSuggestions) setSubscribeFn((args) => subscribeFn({ ...args, hideSuggestions } as typeof args));
    },
  };
}
