// Test helper: an HTTP server on a unix socket in a temp run dir, answering routes like the daemon would.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { clientPathsFromEnv, type ClientPaths } from '../../src/cli/client.js';

export interface Seen {
  method: string;
  url: string;
  body: unknown;
}

export type Route = (body: unknown, res: http.ServerResponse) => void;

export interface FakeDaemon {
  paths: ClientPaths;
  seen: Seen[];
  close(): Promise<void>;
}

export function tempRunDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'dnsnet-cli-'));
}

/** Answer with JSON `body` and `status`. */
export function json(status: number, body: unknown): Route {
  return (_req, res) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
}

export async function startFakeDaemon(routes: Record<string, Route>, runDir = tempRunDir()): Promise<FakeDaemon> {
  const paths = clientPathsFromEnv({ DNSNET_RUN: runDir });
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const body: unknown = text === '' ? undefined : JSON.parse(text);
      seen.push({ method: req.method ?? '', url: req.url ?? '', body });
      const route = routes[`${req.method} ${req.url}`];
      if (route) route(body, res);
      else json(404, { code: 'not-found', message: `no route ${req.method} ${req.url}` })(body, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(paths.socket, resolve));
  return {
    paths,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          fs.rmSync(runDir, { recursive: true, force: true });
          resolve();
        });
      }),
  };
}
