import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { stripTypeScriptTypes } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sendError } from './respond.ts';

// The dashboard at /ui: static files the package ships, served by the API process itself, with no build step
// and no CDN. The page (dashboard/) is plain browser ES modules; it talks to the API through jobql/client
// (src/client), which the browser loads module by module from /ui/client/. When the service runs from its
// sources (`npm start`), those modules are TypeScript: Node's own type stripping turns each into JavaScript
// once, on the first request. From an installed package (dist/) they are already JavaScript. The client's two
// dependencies, graphql-ws and graphql-sse, ship browser-ready ES modules whose imports are all relative; the
// client's bare imports of them are rewritten to /ui/vendor/ (an import map would be an inline script, which
// the page's Content-Security-Policy forbids).

/** No inline script or style, nothing from another host; the API on the same origin (HTTP, SSE, WebSocket). */
export const DASHBOARD_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const here = path.dirname(fileURLToPath(import.meta.url));
/** Two levels up from src/http or dist/http: the package's root, which holds dashboard/. */
const pageDir = path.resolve(here, '../../dashboard');
const clientDir = path.resolve(here, '../client');
const vendorDirs: Record<string, string> = {
  'graphql-ws': path.dirname(fileURLToPath(import.meta.resolve('graphql-ws'))),
  'graphql-sse': path.dirname(fileURLToPath(import.meta.resolve('graphql-sse'))),
};
const vendorEntry: Record<string, string> = {
  'graphql-ws': '/ui/vendor/graphql-ws/client.js',
  'graphql-sse': '/ui/vendor/graphql-sse/client.mjs',
};

const contentTypes: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.ts': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
};

// Each path part is a plain file name: no dots but the extension's, no slashes, so no path leaves its folder.
const pagePath = /^\/ui\/([a-z0-9-]+\.(?:js|css|svg))$/;
const clientPath = /^\/ui\/client\/((?:generated\/)?[a-z0-9-]+)\.(?:ts|js)$/;
const vendorPath = /^\/ui\/vendor\/(graphql-ws|graphql-sse)\/([A-Za-z0-9_-]+\.m?js)$/;

type Asset = { body: Buffer; type: string };

export type Dashboard = { serve: (req: IncomingMessage, res: ServerResponse, path: string) => void };

/** The dashboard's request handler; files are read on first request and kept (a fixed, small set). */
export function createDashboard(): Dashboard {
  const cache = new Map<string, Asset | null>();
  const cached = (key: string, load: () => Asset | null) => {
    if (!cache.has(key)) cache.set(key, load());
    return cache.get(key) ?? null;
  };
  return {
    serve: (req, res, urlPath) => {
      if (req.method !== 'GET' && req.method !== 'HEAD') return sendError(res, 405, 'METHOD_NOT_ALLOWED', 'the dashboard is read with GET');
      const asset = cached(urlPath, () => assetFor(urlPath));
      if (!asset) return sendError(res, 404, 'NOT_FOUND', `no dashboard file at ${urlPath}`);
      res.writeHead(200, {
        'content-type': asset.type,
        'content-length': asset.body.length,
        'content-security-policy': DASHBOARD_CSP,
        'x-content-type-options': 'nosniff',
        'referrer-policy': 'no-referrer',
        // Revalidated on every load: a restarted, upgraded server's files are used at once.
        'cache-control': 'no-cache',
      });
      res.end(req.method === 'HEAD' ? undefined : asset.body);
    },
  };
}

function assetFor(urlPath: string): Asset | null {
  if (urlPath === '/ui' || urlPath === '/ui/' || urlPath === '/ui/index.html') return readAsset(path.join(pageDir, 'index.html'));
  const page = pagePath.exec(urlPath);
  if (page) return readAsset(path.join(pageDir, page[1] as string));
  const client = clientPath.exec(urlPath);
  if (client) return clientModule(client[1] as string);
  const vendor = vendorPath.exec(urlPath);
  if (vendor) return readAsset(path.join(vendorDirs[vendor[1] as string] as string, vendor[2] as string));
  return null;
}

function readAsset(file: string): Asset | null {
  try {
    return { body: readFileSync(file), type: contentTypes[path.extname(file)] ?? 'application/octet-stream' };
  } catch {
    return null;
  }
}

/** A module of jobql/client as browser JavaScript: from src/ (TypeScript, types stripped) or dist/ (JavaScript). */
function clientModule(name: string): Asset | null {
  let code: string;
  try {
    code = stripTypeScriptTypes(readFileSync(path.join(clientDir, `${name}.ts`), 'utf8'));
  } catch {
    try {
      code = readFileSync(path.join(clientDir, `${name}.js`), 'utf8');
    } catch {
      return null;
    }
  }
  for (const [specifier, url] of Object.entries(vendorEntry)) code = code.replaceAll(`from '${specifier}'`, `from '${url}'`);
  return { body: Buffer.from(code), type: contentTypes['.js'] as string };
}
