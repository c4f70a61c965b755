import { type DocumentNode, GraphQLError, type Source } from 'graphql';

// What one GraphQL document may cost, bounded before and while it is parsed. A document's AST with its
// locations takes about 500 bytes per token (measured on graphql 17: ~2.3 MB for 5,000 fields), so
// the byte limit bounds the text and the token limit bounds the tree. Comments are lexed but not counted
// by graphql-js's maxTokens; the byte limit bounds them.
export const MAX_DOCUMENT_TOKENS = 5000;
// The parse cache keeps only documents that parsed and validated, and at most this much of them
// (estimated as below), so that a stream of distinct documents cannot grow the process.
export const DOCUMENT_CACHE_BYTES = 32 * 1024 * 1024;
const DOCUMENT_CACHE_ENTRIES = 1000;
const BYTES_PER_TOKEN = 500;

/** An estimate of the memory a parsed document holds: its text plus every token (comments included). */
function estimateBytes(text: string, document: DocumentNode): number {
  let tokens = 0;
  for (let token = document.loc?.startToken ?? null; token; token = token.next) tokens++;
  return text.length * 2 + tokens * BYTES_PER_TOKEN;
}

/** A least-recently-used map bounded by the sum of its entries' sizes and by their count. */
export class SizedLru<V> {
  readonly #entries = new Map<string, { value: V; size: number }>();
  #total = 0;
  readonly maxBytes: number;
  readonly maxEntries: number;
  constructor(maxBytes: number, maxEntries: number) {
    this.maxBytes = maxBytes;
    this.maxEntries = maxEntries;
  }

  get(key: string): V | undefined {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    // Map keeps insertion order: re-inserting makes this the most recently used.
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    return entry.value;
  }

  set(key: string, value: V, size: number): void {
    if (size > this.maxBytes) return;
    const old = this.#entries.get(key);
    if (old) {
      this.#total -= old.size;
      this.#entries.delete(key);
    }
    this.#entries.set(key, { value, size });
    this.#total += size;
    for (const [oldest, entry] of this.#entries) {
      if (this.#total <= this.maxBytes && this.#entries.size <= this.maxEntries) break;
      this.#entries.delete(oldest);
      this.#total -= entry.size;
    }
  }

  get bytes(): number {
    return this.#total;
  }

  get size(): number {
    return this.#entries.size;
  }
}

function tooLarge(message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: 'DOCUMENT_TOO_LARGE', http: { status: 400 } } });
}

type ParseHook = {
  params: { source: string | Source };
  setParseFn: (fn: (source: string | Source, options?: object) => DocumentNode) => void;
  parseFn: (source: string | Source, options?: object) => DocumentNode;
  setParsedDocument: (document: DocumentNode) => void;
};
type ValidateHook = {
  params: { documentAST: DocumentNode; rules?: ReadonlyArray<{ name: string }> };
  setResult: (errors: ReadonlyArray<GraphQLError>) => void;
};

/**
 * A Yoga plugin in place of Yoga's parserAndValidationCache (which must be turned off): refuses a document
 * over maxBytes before parsing it and one over MAX_DOCUMENT_TOKENS while parsing it (DOCUMENT_TOO_LARGE),
 * and caches a document only once it has parsed and validated, within DOCUMENT_CACHE_BYTES. It is an
 * envelop plugin, so HTTP, SSE and graphql-ws (yoga.getEnveloped) all go through it.
 */
export function documentLimits(options: { maxBytes: number; cacheBytes?: number }) {
  const documents = new SizedLru<DocumentNode>(options.cacheBytes ?? DOCUMENT_CACHE_BYTES, DOCUMENT_CACHE_ENTRIES);
  // Parsed but not yet validated: the text a document came from, so that it can be cached once valid.
  const pending = new WeakMap<DocumentNode, string>();
  // The rule sets each cached document passed (rules can differ by plugin configuration).
  const validFor = new WeakMap<DocumentNode, Set<string>>();
  return {
    documents,
    onParse({ params, parseFn, setParseFn, setParsedDocument }: ParseHook) {
      const text = typeof params.source === 'string' ? params.source : params.source.body;
      // text.length is at most the byte length: a cheap check first, the exact one only near the limit.
      if (text.length * 3 > options.maxBytes && Buffer.byteLength(text) > options.maxBytes) {
        throw tooLarge(`the document is ${Buffer.byteLength(text)} bytes; at most ${options.maxBytes} are accepted`);
      }
      const cached = documents.get(text);
      if (cached) return setParsedDocument(cached);
      setParseFn((source, parseOptions) => {
        try {
          const document = parseFn(source, { ...parseOptions, maxTokens: MAX_DOCUMENT_TOKENS });
          pending.set(document, text);
          return document;
        } catch (error) {
          // graphql-js raises the token limit as a plain syntax error; this is its message.
          if (error instanceof GraphQLError && /contains more than \d+ tokens/.test(error.message)) {
            throw tooLarge(`the document has more than ${MAX_DOCUMENT_TOKENS} tokens`);
          }
          throw error;
        }
      });
    },
    onValidate({ params, setResult }: ValidateHook) {
      const rulesKey = params.rules?.map((rule) => rule.name).join(',') ?? '';
      if (validFor.get(params.documentAST)?.has(rulesKey)) return setResult([]);
      return ({ valid }: { valid: boolean }) => {
        if (!valid) return;
        const text = pending.get(params.documentAST);
        if (text !== undefined) documents.set(text, params.documentAST, estimateBytes(text, params.documentAST));
        const sets = validFor.get(params.documentAST) ?? new Set<string>();
        sets.add(rulesKey);
        validFor.set(params.documentAST, sets);
      };
    },
  };
}
