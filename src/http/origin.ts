import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendError } from './respond.ts';

// What a web page in a browser may do with this server. Without these checks any site a developer visits
// could drive an open-mode server on 127.0.0.1 (list jobs with their inputs, create and cancel them):
// cross-origin reads (CORS), requests a browser sends without a preflight (form and multipart POSTs),
// WebSockets (which browsers open to any origin), and DNS rebinding (a foreign name resolving to 127.0.0.1,
// which makes the page same-origin with the server; only the Host header then tells).

const LOOPBACK_HOSTS = ['localhost', '127.0.0.1', '[::1]'];
const WILDCARD_BIND = new Set(['0.0.0.0', '::', '[::]', '']);
const JSON_BODY_TYPES = new Set(['application/json', 'application/graphql-response+json']);

export type OriginPolicy = {
  /** Whether a request with this Host header may be served (a missing one is a non-browser client's). */
  hostAllowed: (host: string | undefined) => boolean;
  /** 'none': no Origin (not a browser, or a navigation); 'same': the page is this server's; 'cross': an allowed other origin. */
  originOf: (origin: string | undefined, host: string | undefined) => 'none' | 'same' | 'cross' | 'refused';
};

/**
 * CORS_ORIGINS lists the cross-origin pages allowed; none by default. Host names served: the loopback names
 * and the address the server is bound to, plus those in ALLOWED_HOSTS; without ALLOWED_HOSTS, in open mode
 * only those (a rebound name is refused), with API keys any (a page cannot get a key by rebinding).
 */
export function createOriginPolicy(options: {
  corsOrigins: string[];
  allowedHosts: string[] | null;
  openMode: boolean;
  bindHost: string;
}): OriginPolicy {
  const bind = options.bindHost.toLowerCase();
  // Loopback names are always safe: a page on another site cannot be served from them.
  const own = [...LOOPBACK_HOSTS, ...(WILDCARD_BIND.has(bind) ? [] : [bind.includes(':') ? `[${bind}]` : bind])];
  const hosts = new Set([...own, ...(options.allowedHosts ?? (options.openMode ? [] : ['*']))]);
  const origins = new Set(options.corsOrigins);
  return {
    hostAllowed: (host) => host === undefined || hosts.has('*') || hosts.has(hostName(host)),
    originOf: (origin, host) => {
      if (origin === undefined) return 'none';
      if (origins.has('*') || origins.has(origin.toLowerCase())) return 'cross';
      try {
        if (host !== undefined && new URL(origin).host === host.toLowerCase()) return 'same';
      } catch {
        // "null" (sandboxed frames, file: pages) and other non-URLs are no origin of ours
      }
      return 'refused';
    },
  };
}

/** "Example.com:4000" → "example.com"; "[::1]:4000" → "[::1]"; a trailing dot dropped. */
function hostName(host: string): string {
  const lower = host.trim().toLowerCase();
  const name = lower.startsWith('[') ? lower.slice(0, lower.indexOf(']') + 1) : lower.replace(/:\d*$/, '');
  return name.endsWith('.') ? name.slice(0, -1) : name;
}

function refuse(res: ServerResponse, status: number, code: string, message: string, graphql: boolean): true {
  sendError(res, status, code, message, graphql);
  return true;
}

/**
 * Runs before authentication on the routes that carry tenant data. Returns true when it has answered:
 * a refused Host or Origin (403), or a CORS preflight (so that a frontend on an allowed origin gets through
 * it without a key, as browsers send none with it). Otherwise it adds the CORS headers an allowed origin
 * needs and lets the request go on.
 */
export function answerBrowserChecks(req: IncomingMessage, res: ServerResponse, policy: OriginPolicy, graphql: boolean): boolean {
  if (!policy.hostAllowed(req.headers.host)) {
    return refuse(res, 403, 'HOST_NOT_ALLOWED', `this server does not answer to the host name in Host (see ALLOWED_HOSTS)`, graphql);
  }
  const origin = req.headers.origin;
  const kind = policy.originOf(origin, req.headers.host);
  if (kind === 'refused') {
    return refuse(res, 403, 'ORIGIN_NOT_ALLOWED', `requests from origin ${origin} are not allowed (see CORS_ORIGINS)`, graphql);
  }
  if (kind === 'cross') {
    res.setHeader('access-control-allow-origin', origin as string);
    res.setHeader('access-control-expose-headers', 'x-request-id');
  }
  res.setHeader('vary', 'Origin');
  if (req.method === 'OPTIONS') {
    if (kind === 'cross') {
      res.setHeader('access-control-allow-methods', graphql ? 'GET, POST, OPTIONS' : 'GET, HEAD, OPTIONS');
      const asked = req.headers['access-control-request-headers'];
      if (asked) res.setHeader('access-control-allow-headers', asked);
      res.setHeader('access-control-max-age', '600');
    }
    res.writeHead(204, { allow: graphql ? 'GET, POST, OPTIONS' : 'GET, HEAD, OPTIONS' });
    res.end();
    return true;
  }
  return false;
}

/**
 * A POST to /graphql must carry JSON: a browser sends form, multipart and text/plain bodies cross-origin
 * without a preflight, so accepting them would let any page run mutations. Returns true when it refused (415).
 */
export function refuseNonJsonBody(req: IncomingMessage, res: ServerResponse): boolean {
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  if (JSON_BODY_TYPES.has(type)) return false;
  return refuse(res, 415, 'UNSUPPORTED_MEDIA_TYPE', 'a POST body must be application/json', true);
}

/** The same Host and Origin rules for a WebSocket upgrade (browsers open WebSockets to any origin). */
export function upgradeAllowed(req: IncomingMessage, policy: OriginPolicy): boolean {
  return policy.hostAllowed(req.headers.host) && policy.originOf(req.headers.origin, req.headers.host) !== 'refused';
}
