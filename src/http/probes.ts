import type { ServerResponse } from 'node:http';
import { logger } from '../logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { sendJson, sendUnexpectedError } from './respond.ts';

export type ProbeOptions = {
  /** Null when the process can serve; otherwise why not (for /readyz). */
  notReadyReason: () => Promise<string | null>;
  metrics: Metrics;
};

export type Probe = 'healthz' | 'readyz' | 'metrics';

/**
 * Answers GET /healthz, /readyz or /metrics; router.ts decides when (open without an API key, on the API port and
 * on METRICS_PORT; /metrics on the API port only without API keys). The probes carry no tenant data. The metrics
 * count what all tenants did (jobs by kind, database-wide queue depths), so with API keys they are served only on
 * METRICS_PORT, a port the operator keeps off the network that tenants reach.
 */
export function serveProbe(res: ServerResponse, probe: Probe, options: ProbeOptions) {
  if (probe === 'healthz') return sendJson(res, 200, { status: 'ok' });
  if (probe === 'readyz') {
    void options
      .notReadyReason()
      .then((reason) => (reason === null ? sendJson(res, 200, { status: 'ready' }) : sendJson(res, 503, { status: 'not ready', reason })));
    return;
  }
  const { metrics } = options;
  metrics
    .text()
    .then((text) => {
      res.writeHead(200, { 'content-type': metrics.contentType });
      res.end(text);
    })
    .catch((error) => {
      logger.error('collecting metrics failed', { err: error });
      sendUnexpectedError(res);
    });
}
