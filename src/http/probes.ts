import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { logger } from '../logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { isGet, sendJson } from './rest.ts';

export type ProbeOptions = {
  /** Null when the process can serve; otherwise why not (for /readyz). */
  notReadyReason: () => Promise<string | null>;
  metrics: Metrics;
};

/**
 * /healthz, /readyz and, when `withMetrics`, /metrics: open without an API key. The probes carry no tenant data,
 * and are served on the API port and on METRICS_PORT. The metrics count what all tenants did (jobs by kind,
 * database-wide queue depths), so with API keys they are served only on METRICS_PORT, a port the operator
 * keeps off the network that tenants reach (server.ts). Returns false when the request is for another route.
 */
export function handleProbe(
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  options: ProbeOptions & { withMetrics: boolean },
): boolean {
  if (!isGet(req)) return false;
  if (path === '/healthz') {
    sendJson(res, 200, { status: 'ok' });
    return true;
  }
  if (path === '/readyz') {
    void options
      .notReadyReason()
      .then((reason) => (reason === null ? sendJson(res, 200, { status: 'ready' }) : sendJson(res, 503, { status: 'not ready', reason })));
    return true;
  }
  if (path === '/metrics' && options.withMetrics) {
    const { metrics } = options;
    metrics
      .text()
      .then((text) => {
        res.writeHead(200, { 'content-type': metrics.contentType });
        res.end(text);
      })
      .catch((error) => {
        logger.error('collecting metrics failed', { err: error });
        sendJson(res, 500, { error: { code: 'INTERNAL_SERVER_ERROR', message: 'Unexpected error.' } });
      });
    return true;
  }
  return false;
}

/** GET /jobs/{id}: the one REST route, matched here for its metrics label and in server.ts to serve it. */
export const jobPath = /^\/jobs\/([^/]+)$/;

/** The route label of a path for metrics: a fixed set, so paths clients make up do not become series. */
export function routeOf(path: string, graphqlEndpoint: string): string {
  if (path === graphqlEndpoint) return 'graphql';
  if (path === '/healthz' || path === '/readyz' || path === '/metrics') return path.slice(1);
  return jobPath.test(path) ? 'jobs' : 'unknown';
}

/**
 * Counts a request when it ends: 'close' comes for a finished response and for one the client cut short (an SSE
 * stream it closed, an aborted request), where 'finish' would miss the latter.
 */
export function countWhenClosed(res: ServerResponse, route: string, metrics: Metrics, onClose?: () => void): void {
  res.once('close', () => {
    metrics.httpRequest(route, res.headersSent ? res.statusCode : 'none');
    onClose?.();
  });
}

/** The probes alone on their own port (METRICS_PORT): what a worker-only process offers its orchestrator. */
export async function startProbeServer(
  options: ProbeOptions & { host: string; port: number },
): Promise<{ url: string; close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    countWhenClosed(res, routeOf(path, ''), options.metrics);
    if (!handleProbe(req, res, path, { ...options, withMetrics: true }))
      sendJson(res, 404, { error: { code: 'NOT_FOUND', message: `no route for ${req.method} ${path}` } });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}`,
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Scrapes are short; an idle keep-alive connection must not hold the shutdown.
      server.closeAllConnections();
      await closed;
    },
  };
}
