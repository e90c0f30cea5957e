// The daemon's API client: HTTP+JSON over the unix socket, starting the daemon on demand.
import http from 'node:http';
import path from 'node:path';
import type { ApiError } from '../daemon/api-types.js';
import { DnsnetError, type ErrorCode } from '../errors.js';
import { startDaemon, type DaemonEntry, type StartTiming } from './daemon-start.js';

/** The CLI's view of where the daemon lives (DESIGN "Files"); only the run dir matters to a client. */
export interface ClientPaths {
  runDir: string;
  socket: string;
  daemonLog: string;
}

export function clientPathsFromEnv(env: NodeJS.ProcessEnv = process.env): ClientPaths {
  const runDir = path.resolve(env.DNSNET_RUN || '/run/dnsnet');
  return { runDir, socket: path.join(runDir, 'dnsnet.sock'), daemonLog: path.join(runDir, 'daemon.log') };
}

export interface ClientOptions {
  paths: ClientPaths;
  /** How to start the daemon when nobody answers; absent: never start one (tests, `dnsnet daemon`). */
  daemon?: DaemonEntry;
  startTiming?: StartTiming;
}

const ERROR_CODES: ReadonlySet<string> = new Set<ErrorCode>(['invalid', 'not-found', 'conflict', 'exhausted', 'kernel', 'internal']);

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

  async request<T>(method: string, route: string, body?: unknown): Promise<T> {
    const res = await this.open(method, route, body);
    const text = await readBody(res);
    if ((res.statusCode ?? 500) >= 400) throw apiError(method, route, res.statusCode, text);
    if (text.trim() === '') return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch (error) {
      throw new DnsnetError('internal', `${method} ${route}: daemon answered with invalid JSON`, { cause: error });
    }
  }

  /** A streaming GET (logs): copies the body to `out` until the daemon ends it. */
  async stream(route: string, out: NodeJS.WritableStream): Promise<void> {
    const res = await this.open('GET', route);
    if ((res.statusCode ?? 500) >= 400) throw apiError('GET', route, res.statusCode, await readBody(res));
    await new Promise<void>((resolve, reject) => {
      res.on('error', reject);
      res.on('end', resolve);
      res.pipe(out, { end: false });
    });
  }

  private async open(method: string, route: string, body?: unknown): Promise<http.IncomingMessage> {
    try {
      return await send(this.paths.socket, method, route, body);
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
        return await send(this.paths.socket, method, route, body);
      } catch (retryError) {
        throw connectError(this.paths.socket, retryError);
      }
    }
  }
}

/** True when a daemon answers GET /_ping on `socket`. */
export async function ping(socket: string): Promise<boolean> {
  try {
    const res = await send(socket, 'GET', '/_ping');
    await readBody(res);
    return res.statusCode === 200;
  } catch {
    return false;
  }
}

function send(socket: string, method: string, route: string, body?: unknown): Promise<http.IncomingMessage> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        socketPath: socket,
        method,
        path: route,
        agent: false, // one connection per request: no keep-alive socket holding the CLI open
        headers: payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
      },
      resolve,
    );
    req.on('error', reject);
    req.end(payload);
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
      const code = typeof body.code === 'string' && ERROR_CODES.has(body.code) ? (body.code as ErrorCode) : 'internal';
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
