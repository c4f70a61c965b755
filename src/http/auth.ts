import { createHash, timingSafeEqual } from 'node:crypto';

/** Open mode (no API_KEYS): one tenant for everything. */
export const DEFAULT_TENANT = 'default';

export type Authentication = { tenant: string } | { error: 'missing' | 'invalid' };

export type Authenticator = {
  /** False in open single-tenant mode. */
  required: boolean;
  /** From an `Authorization: Bearer <key>` value (HTTP header or graphql-ws connectionParams.authorization). */
  authenticate: (authorization: string | null | undefined) => Authentication;
};

/**
 * Keys are held as SHA-256 digests and compared with timingSafeEqual against every configured key, so neither
 * a key's bytes nor which tenant matched shows in the response time; keys are never logged.
 */
export function createAuthenticator(keys: ReadonlyArray<{ tenant: string; key: string }>): Authenticator {
  const digests = keys.map(({ tenant, key }) => ({ tenant, digest: createHash('sha256').update(key).digest() }));
  return {
    required: digests.length > 0,
    authenticate: (authorization) => {
      if (digests.length === 0) return { tenant: DEFAULT_TENANT };
      const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
      if (!match) return { error: 'missing' };
      const offered = createHash('sha256')
        .update(match[1] as string)
        .digest();
      let tenant: string | null = null;
      for (const candidate of digests) {
        if (timingSafeEqual(candidate.digest, offered) && tenant === null) tenant = candidate.tenant;
      }
      return tenant === null ? { error: 'invalid' } : { tenant };
    },
  };
}
