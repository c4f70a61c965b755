// Checks of the JSON values the API stores. PostgreSQL's jsonb rejects some values that JSON.parse accepts: the
// NUL character (\u0000) and unpaired UTF-16 surrogates. Finding them here turns what would be a database error
// into a client error.

/**
 * How deeply job inputs and results may nest (arrays and objects). Generous for any real input, and far below
 * what the recursive code that handles JSON (JSON.stringify, zod, graphql-js, pino) can take before it runs
 * out of stack, which depends on how much stack the caller already uses: without this limit, the same input
 * was accepted or refused (INTERNAL_SERVER_ERROR) depending on the process, and a stored one could break
 * every later read of its row.
 */
export const MAX_JSON_DEPTH = 64;

/**
 * Whether `value` nests arrays or objects more than `maxDepth` levels deep (a scalar is depth 0, `[]` and `{}`
 * are 1). Iterative, with its own stack, so any depth is measured without recursion; depth-first, so it
 * stops within `maxDepth + 1` steps of going too deep, even on a cyclic value.
 */
export function nestsDeeperThan(value: unknown, maxDepth: number): boolean {
  const stack: Array<{ value: unknown; depth: number }> = [{ value, depth: 0 }];
  for (let next = stack.pop(); next; next = stack.pop()) {
    if (next.value === null || typeof next.value !== 'object') continue;
    const depth = next.depth + 1;
    if (depth > maxDepth) return true;
    const children = Array.isArray(next.value) ? next.value : Object.values(next.value);
    for (const child of children) if (child !== null && typeof child === 'object') stack.push({ value: child, depth });
  }
  return false;
}

/** The path of the first string (value or key) jsonb cannot store, or null when the value is storable. */
export function findUnstorableString(value: unknown, path: (string | number)[] = []): (string | number)[] | null {
  if (typeof value === 'string') return storable(value) ? null : path;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = findUnstorableString(value[i], [...path, i]);
      if (found) return found;
    }
    return null;
  }
  if (value !== null && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      if (!storable(key)) return [...path, key];
      const found = findUnstorableString(item, [...path, key]);
      if (found) return found;
    }
  }
  return null;
}

function storable(text: string): boolean {
  return text.isWellFormed() && !text.includes('\u0000');
}
