// PostgreSQL's jsonb rejects some values that JSON.parse accepts: the NUL character (\u0000) and unpaired
// UTF-16 surrogates. Finding them here turns what would be a database error into a client error.

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
