// The daemon's API client: HTTP+JSON over the unix socket, starting the daemon on demand.
import type http from 'node:http';
import net from 'node:net';
import type { ClientPaths } from '../api/paths.js';
import { ROUTES, routeUrl, type Route } from '../api/routes.js';
import type { ApiError } from '../api/types.js';
import { DnsnetError, type ErrorCode } from '../errors.js';
import { startDaemon, type DaemonEntry, type StartTiming } from './daemon-start.js';

export { clientPathsFromEnv, type ClientPaths } from '../api/paths.js';

export interface ClientOptions {
  paths: ClientPaths;
  /** How to start the daemon when nobody answers; absent: never start one (tests, `dnsnet daemon`). */
  daemon?: DaemonEntry;
  startTiming?: StartTiming;
}

const ERROR_CODES: ReadonlySet<string> = new Set<ErrorCode>(['invalid', 'not-found', 'conflict', 'exhausted', 'kernel', 'internal']);

/** Whether `code` is one of DnsnetError's (a code that came over the API). */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && ERROR_CODES.has(code);
}

/** Socket errors that mean "no daemon there": the request never reached one, so retrying is safe. */
const NO_DAEMON = new Set(['ENOENT', 'ECONNREFUSED']);

export class Client {
  private started = false;
  private startFailure: unknown;

  constructor(private readonly options: ClientOptions) {}

  get paths(): ClientPaths {
    return this.options.paths;
  }

  async get<T>(route: string): Promise<T> {
    return this.request<T>('GET', route);
  }

  async post<T>(route: string, body: unknown = {}): Promise<T> {
    return this.request<T>('POST', route, body);
  }

  async delete<T>(route: string): Promise<T> {
    return this.request<T>('DELETE', route);
  }

  /** One API call: `route` (from ROUTES) for `ref`, with a JSON body (POST) and query flags. */
  call<T>(route: Route, opts: { ref?: string; body?: unknown; query?: Record<string, boolean> } = {}): Promise<T> {
    const url = routeUrl(route, opts.ref, opts.query);
    return this.request<T>(route.method, url, route.method === 'POST' ? (opts.body ?? {}) : undefined);
  }

  async request<T>(method: string, route: string, body?: unknown): Promise<T> {
    const res = await this.withDaemon(() => exchange(this.paths.socket, method, route, body));
    const text = res.body;
    if (res.status >= 400) throw apiError(method, route, res.status, text);
    if (text.trim() === '') return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch (error) {
      throw new DnsnetError('internal', `${method} ${route}: daemon answered with invalid JSON`, { cause: error });
    }
  }

  /** A streaming GET (logs): copies the body to `out` until the daemon ends it. */
  async stream(route: string, out: NodeJS.WritableStream): Promise<void> {
    const res = await this.withDaemon(() => openStream(this.paths.socket, route));
    if ((res.statusCode ?? 500) >= 400) throw apiError('GET', route, res.statusCode, await readBody(res));
    await new Promise<void>((resolve, reject) => {
      res.on('error', reject);
      res.on('end', resolve);
      res.pipe(out, { end: false });
    });
  }

  /**
   * POST `body` and hand each line of the answer (one JSON object a line) to `onLine` as it comes: a pull's
   * progress. An error status is the daemon's refusal, as for `call`.
   */
  async streamLines(route: string, body: unknown, onLine: (value: Record<string, unknown>) => void): Promise<void> {
    const res = await this.withDaemon(() => openStream(this.paths.socket, route, 'POST', JSON.stringify(body)));
    if ((res.statusCode ?? 500) >= 400) throw apiError('POST', route, res.statusCode, await readBody(res));
    let pending = '';
    await new Promise<void>((resolve, reject) => {
      res.on('error', reject);
      res.on('data', (chunk: Buffer) => {
        pending += chunk.toString('utf8');
        let nl: number;
        while ((nl = pending.indexOf('\n')) >= 0) {
          const line = pending.slice(0, nl);
          pending = pending.slice(nl + 1);
          if (line.trim() !== '') onLine(JSON.parse(line) as Record<string, unknown>);
        }
      });
      res.on('end', resolve);
      // The daemon died mid-stream: the connection closes without an end (the caller sees what it got).
      res.on('close', resolve);
    });
  }

  /** Run `attempt`; when no daemon is there, start one (once) and run it again. */
  private async withDaemon<R>(attempt: () => Promise<R>): Promise<R> {
    try {
      return await attempt();
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? '';
      if (!NO_DAEMON.has(code) || !this.options.daemon) throw connectError(this.paths.socket, error);
      if (this.startFailure !== undefined) throw this.startFailure; // said once per ref, the same way
      if (this.started) throw connectError(this.paths.socket, error);
      this.started = true;
      try {
        await startDaemon(this.paths, this.options.daemon, () => ping(this.paths.socket), this.options.startTiming);
      } catch (startError) {
        this.startFailure = startError;
        throw startError;
      }
      try {
        return await attempt();
      } catch (retryError) {
        throw connectError(this.paths.socket, retryError);
      }
    }
  }
}

/** True when a daemon answers GET /_ping on `socket`. */
export async function ping(socket: string): Promise<boolean> {
  try {
    return (await exchange(socket, ROUTES.ping.method, ROUTES.ping.path)).status === 200;
  } catch {
    return false;
  }
}

export interface RawResponse {
  status: number;
  body: string;
}

/**
 * One request, one response, on a fresh connection (`Connection: close`), without node:http: loading
 * node:http and its agent costs every `dnsnet` command a few ms, and a CLI command needs only this.
 * The response is read to the end of the connection, then parsed: status line, headers, and a body
 * framed by Content-Length or chunked encoding (or the rest of the stream). Streams (`logs -f`) use
 * node:http (`openStream`).
 */
export function exchange(socket: string, method: string, route: string, body?: unknown): Promise<RawResponse> {
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body), 'utf8');
  const head =
    `${method} ${route} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n` +
    (payload ? `Content-Type: application/json\r\nContent-Length: ${payload.length}\r\n` : '') +
    '\r\n';
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let settled = false;
    const fail = (error: Error): void => {
      if (settled) return;
      settled = true;
      sock.destroy();
      reject(error);
    };
    const sock = net.connect(socket);
    sock.on('connect', () => {
      sock.write(head);
      if (payload) sock.write(payload);
    });
    sock.on('data', (chunk: Buffer) => chunks.push(chunk));
    sock.on('error', fail);
    sock.on('end', () => {
      if (settled) return;
      settled = true;
      sock.destroy();
      try {
        resolve(parseResponse(Buffer.concat(chunks)));
      } catch (error) {
        reject(error);
      }
    });
  });
}

/** Parse a whole HTTP/1.1 response (exported for tests). */
export function parseResponse(raw: Buffer): RawResponse {
  const end = raw.indexOf('\r\n\r\n');
  if (end < 0) throw new DnsnetError('internal', 'daemon closed the connection before a whole response');
  const lines = raw.subarray(0, end).toString('latin1').split('\r\n');
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
  if (!status) throw new DnsnetError('internal', `daemon answered something that is not HTTP: ${JSON.stringify((lines[0] ?? '').slice(0, 60))}`);
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  let body = raw.subarray(end + 4);
  if (/\bchunked\b/i.test(headers.get('transfer-encoding') ?? '')) body = dechunk(body);
  else if (headers.has('content-length')) {
    const len = Number(headers.get('content-length'));
    if (!Number.isInteger(len) || len < 0 || len > body.length) throw new DnsnetError('internal', 'daemon response shorter than its Content-Length');
    body = body.subarray(0, len);
  }
  return { status: Number(status[1]), body: body.toString('utf8') };
}

function dechunk(data: Buffer): Buffer {
  const parts: Buffer[] = [];
  let off = 0;
  for (;;) {
    const eol = data.indexOf('\r\n', off);
    if (eol < 0) throw new DnsnetError('internal', 'daemon response: broken chunked encoding');
    const size = parseInt(data.subarray(off, eol).toString('latin1').split(';')[0]!.trim(), 16);
    if (!Number.isInteger(size) || size < 0 || eol + 2 + size > data.length) throw new DnsnetError('internal', 'daemon response: broken chunked encoding');
    if (size === 0) return Buffer.concat(parts);
    parts.push(data.subarray(eol + 2, eol + 2 + size));
    off = eol + 2 + size + 2;
  }
}

/** A streaming request through node:http (loaded only here): the response is read as it comes. */
async function openStream(socket: string, route: string, method: 'GET' | 'POST' = 'GET', body?: string): Promise<http.IncomingMessage> {
  const { default: http } = await import('node:http');
  return new Promise((resolve, reject) => {
    // agent: false: one connection per request, no keep-alive socket holding the CLI open.
    const headers = body !== undefined ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) } : {};
    const req = http.request({ socketPath: socket, method, path: route, agent: false, headers }, resolve);
    req.on('error', reject);
    req.end(body);
  });
}

function readBody(res: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (chunk: Buffer) => chunks.push(chunk));
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', reject);
  });
}

/** An ApiError body becomes the DnsnetError the daemon threw; anything else says what came back. */
export function apiError(method: string, route: string, status: number | undefined, text: string): DnsnetError {
  try {
    const body = JSON.parse(text) as Partial<ApiError>;
    if (typeof body.message === 'string' && body.message !== '') {
      const code = isErrorCode(body.code) ? body.code : 'internal';
      return new DnsnetError(code, body.message);
    }
  } catch {
    // not JSON: fall through
  }
  return new DnsnetError('internal', `${method} ${route}: daemon answered HTTP ${status ?? '?'}${text.trim() ? `: ${text.trim().split('\n')[0]}` : ''}`);
}

function connectError(socket: string, error: unknown): DnsnetError {
  const code = (error as NodeJS.ErrnoException).code;
  const why = code === 'EACCES' ? 'permission denied (dnsnet needs root)' : error instanceof Error ? error.message : String(error);
  return new DnsnetError('internal', `connect to daemon at ${socket}: ${why}`, { cause: error });
}
