// The daemon's HTTP+JSON API on a unix socket: routing requests to the engine and errors to status codes.
import fs from 'node:fs';
import http from 'node:http';
import { DnsnetError } from '../errors.js';
import { ROUTES, routePattern, type Route as ApiRoute } from '../api/routes.js';
import type { ApiError, ConnectSpec, EventQuery, ExecSpec, NetworkCreateSpec, PodmanServeSpec, PullSpec, RunSpec, SaveSpec } from '../api/types.js';
import { eventMatches } from './events.js';
import { METRICS_CONTENT_TYPE } from './metrics.js';
import type { Engine } from './engine.js';

const MAX_BODY = 1 << 20;

const STATUS: Record<string, number> = { invalid: 400, 'not-found': 404, conflict: 409, exhausted: 409, kernel: 500, internal: 500 };

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, params: string[], body: unknown, query: URLSearchParams) => Promise<unknown>;

interface Route {
  method: string;
  pattern: RegExp;
  handler: Handler;
}

export function createApiServer(engine: Engine, log: (line: string) => void): http.Server {
  const routes: Route[] = [];
  const add = (route: ApiRoute, handler: Handler) => {
    routes.push({ method: route.method, pattern: routePattern(route), handler });
  };

  add(ROUTES.ping, async () => ({ pid: process.pid }));
  add(ROUTES.listNetworks, async () => engine.listNetworks());
  add(ROUTES.createNetwork, async (_q, _r, _p, body) => engine.createNetwork(body as NetworkCreateSpec));
  add(ROUTES.pruneNetworks, async () => ({ deleted: await engine.pruneNetworks() }));
  add(ROUTES.inspectNetwork, async (_q, _r, [ref]) => engine.inspectNetwork(ref!));
  add(ROUTES.removeNetwork, async (_q, _r, [ref]) => (await engine.removeNetwork(ref!), {}));
  add(ROUTES.connect, async (_q, _r, [ref], body) => (await engine.connect(ref!, body as ConnectSpec), {}));
  add(ROUTES.disconnect, async (_q, _r, [ref], body) => (await engine.disconnect(ref!, (body as { container: string }).container), {}));
  add(ROUTES.listContainers, async (_q, _r, _p, _b, query) => engine.listContainers(query.get('all') === '1'));
  add(ROUTES.run, async (_q, _r, _p, body) => engine.run(body as RunSpec));
  add(ROUTES.inspectContainer, async (_q, _r, [ref]) => engine.inspectContainer(ref!));
  add(ROUTES.started, async (_q, _r, [ref], body) => (await engine.started(ref!, (body as { pid: number }).pid), {}));
  add(ROUTES.exited, async (_q, _r, [ref], body) => (await engine.exited(ref!, (body as { exitCode: number }).exitCode), {}));
  add(ROUTES.stop, async (_q, _r, [ref], body) => (await engine.stop(ref!, (body as { timeout?: number }).timeout ?? 10), {}));
  add(ROUTES.start, async (_q, _r, [ref]) => engine.start(ref!));
  add(ROUTES.remove, async (_q, _r, [ref], _b, query) => (await engine.remove(ref!, query.get('force') === '1'), {}));
  add(ROUTES.exec, async (_q, _r, [ref], body) => engine.exec(ref!, body as ExecSpec));
  add(ROUTES.logs, async (req, res, [ref], _b, query) => streamLogs(engine, ref!, query.get('follow') === '1', req, res));
  add(ROUTES.stats, async () => ({ resolver: engine.resolver.stats(), podman: engine.podman.stats() }));
  add(ROUTES.systemPrune, async () => ({ removed: await engine.systemPrune() }));
  add(ROUTES.info, async () => engine.info());
  add(ROUTES.events, async (req, res, _p, _b, query) => streamEvents(engine, eventQuery(query), req, res));
  add(ROUTES.metrics, async (_q, res) => {
    const text = engine.metrics();
    res.writeHead(200, { 'content-type': METRICS_CONTENT_TYPE, 'content-length': Buffer.byteLength(text) });
    res.end(text);
    return STREAMED;
  });
  add(ROUTES.systemReset, async () => engine.reset());
  add(ROUTES.pull, async (_q, res, _p, body, query) => (query.get('stream') === '1' ? streamPull(engine, body as PullSpec, res) : engine.images.pull(body as PullSpec)));
  add(ROUTES.listImages, async () => engine.images.list());
  add(ROUTES.saveImages, async (_q, _r, _p, body) => (await engine.images.save((body as SaveSpec).refs, (body as SaveSpec).file), {}));
  add(ROUTES.pruneImages, async (_q, _r, _p, _b, query) => engine.pruneImages(query.get('all') === '1'));
  add(ROUTES.loadImages, async (_q, _r, _p, body) => engine.images.load((body as { file: string }).file));
  add(ROUTES.inspectImage, async (_q, _r, [ref]) => engine.images.inspect(ref!));
  add(ROUTES.removeImage, async (_q, _r, [ref], _b, query) => engine.removeImage(ref!, query.get('force') === '1'));
  add(ROUTES.podmanServe, async (req, res, _p, body) => streamPodman(engine, podmanSpec(body), req, res, log));
  add(ROUTES.podmanReload, async (_q, _r, _p, body) => {
    const spec = podmanSpec(body, false);
    return engine.podman.reload(spec.dir, spec.pid);
  });
  add(ROUTES.podmanList, async () => engine.podman.list());

  return http.createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://dnsnet');
      const route = routes.find((r) => r.method === req.method && r.pattern.test(url.pathname));
      try {
        if (!route) throw new DnsnetError('not-found', `no such API route: ${req.method} ${url.pathname}`);
        const params = (route.pattern.exec(url.pathname) ?? []).slice(1).map(decodeURIComponent);
        const body = await readBody(req);
        const result = await route.handler(req, res, params, body, url.searchParams);
        if (result === STREAMED) return;
        send(res, 200, result);
      } catch (error) {
        const e = error instanceof DnsnetError ? error : new DnsnetError('internal', (error as Error).message ?? String(error), { cause: error });
        if (e.code === 'internal' || e.code === 'kernel') log(`[api] ${req.method} ${url.pathname}: ${e.message}`);
        if (process.env.DNSNET_DEBUG === '1' && error instanceof Error) log(error.stack ?? '');
        const payload: ApiError = { code: e.code, message: e.message };
        if (!res.headersSent) send(res, STATUS[e.code] ?? 500, payload);
        else res.end();
      }
    })();
  });
}

const STREAMED = Symbol('streamed');

/** `?since=NS&until=NS&filter=k=v...` -> an EventQuery; a bad value is refused. */
function eventQuery(query: URLSearchParams): EventQuery {
  const num = (key: string): number | undefined => {
    const v = query.get(key);
    if (v === null || v === '') return undefined;
    const n = Number(v);
    if (!Number.isFinite(n)) throw new DnsnetError('invalid', `events: invalid ${key} ${JSON.stringify(v)}`);
    return n;
  };
  const filters: Record<string, string[]> = {};
  for (const f of query.getAll('filter')) {
    const i = f.indexOf('=');
    const key = i > 0 ? f.slice(0, i) : '';
    if (!['type', 'event', 'container', 'network'].includes(key)) throw new DnsnetError('invalid', `events: invalid filter ${JSON.stringify(f)}: expected type=, event=, container= or network=`);
    (filters[key] ??= []).push(f.slice(i + 1));
  }
  const since = num('since');
  const until = num('until');
  return { ...(since !== undefined ? { since } : {}), ...(until !== undefined ? { until } : {}), filters };
}

/**
 * Events as they happen, one JSON object a line: first the kept ones since `since` (when given), then each new
 * one, until `until` has passed (when given) or the client leaves.
 */
async function streamEvents(engine: Engine, q: EventQuery, req: http.IncomingMessage, res: http.ServerResponse): Promise<typeof STREAMED> {
  res.writeHead(200, { 'content-type': 'application/x-ndjson' });
  if (q.since !== undefined) for (const ev of engine.events.past(q)) res.write(JSON.stringify(ev) + '\n');
  const left = q.until !== undefined ? q.until / 1e6 - Date.now() : Infinity;
  if (left <= 0) {
    res.end();
    return STREAMED;
  }
  // Never a write after the end (an 'error' on the response nobody listens to would take the daemon down).
  const off = engine.events.subscribe((ev) => {
    if (!res.writableEnded && !res.destroyed && eventMatches(ev, { ...q, since: undefined })) res.write(JSON.stringify(ev) + '\n');
  });
  // Headers out now, so a client waiting for the first event knows it is connected.
  res.flushHeaders();
  const done = () => {
    off();
    clearTimeout(timer);
  };
  const timer = Number.isFinite(left)
    ? setTimeout(() => {
        done();
        res.end();
      }, left)
    : undefined;
  req.on('close', done);
  res.on('close', done);
  res.on('error', done);
  return STREAMED;
}

/**
 * A pull with its progress: one JSON object a line (Docker's progress stream habit), `{"id","status",
 * "current","total"}` for each step, then `{"result": PullJson}` or `{"error": ApiError}`.
 */
async function streamPull(engine: Engine, spec: PullSpec, res: http.ServerResponse): Promise<typeof STREAMED> {
  res.writeHead(200, { 'content-type': 'application/x-ndjson' });
  let last = 0;
  try {
    const result = await engine.images.pull(spec, (ev) => {
      // Download steps at most every 100 ms: a terminal needs no more, and a fast pull sends thousands.
      if (ev.status === 'Downloading' && ev.current !== 0 && ev.current !== ev.total && Date.now() - last < 100) return;
      last = Date.now();
      res.write(JSON.stringify(ev) + '\n');
    });
    res.end(JSON.stringify({ result }) + '\n');
  } catch (error) {
    const e = error instanceof DnsnetError ? error : new DnsnetError('internal', (error as Error).message ?? String(error));
    res.end(JSON.stringify({ error: { code: e.code, message: e.message } }) + '\n');
  }
  return STREAMED;
}

function podmanSpec(body: unknown, full = true): PodmanServeSpec {
  const b = (body ?? {}) as Partial<PodmanServeSpec>;
  if (typeof b.dir !== 'string' || !b.dir.startsWith('/')) throw new DnsnetError('invalid', 'podman: dir must be an absolute path');
  if (full && (!Number.isInteger(b.port) || b.port! < 1 || b.port! > 65535)) throw new DnsnetError('invalid', `podman: invalid port ${String(b.port)}`);
  if (!Number.isInteger(b.pid) || b.pid! < 1) throw new DnsnetError('invalid', `podman: invalid pid ${String(b.pid)}`);
  return { dir: b.dir, port: b.port ?? 0, pid: b.pid ?? 0 };
}

/**
 * An aardvark-dns process of ours registers its directory and keeps this request open while it lives: the
 * first line answers once the listeners are bound (`{"networks":N,"watching":true}`, watching: whether the
 * daemon reads changes as they are written), or is the error. The daemon serves the directory until the
 * request closes (that process left), and ends it with `{"end":"replaced"}` when another process took the
 * directory over, or `{"end":"stopping"}` when the daemon stops.
 */
async function streamPodman(engine: Engine, spec: PodmanServeSpec, req: http.IncomingMessage, res: http.ServerResponse, log: (line: string) => void): Promise<typeof STREAMED> {
  let ended = false;
  const result = await engine.podman.serve(spec, (why) => {
    ended = true;
    res.end(JSON.stringify({ end: why }) + '\n');
  });
  res.writeHead(200, { 'content-type': 'application/x-ndjson' });
  res.write(JSON.stringify(result) + '\n');
  // The response's socket closing, not the request's end, says the process is gone.
  res.on('close', () => {
    if (!ended) engine.podman.release(spec.dir, spec.pid).catch((e: unknown) => log(`[podman] release ${spec.dir}: ${(e as Error).message}`));
  });
  return STREAMED;
}

function send(res: http.ServerResponse, status: number, value: unknown): void {
  const text = JSON.stringify(value ?? {});
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function readBody(req: http.IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new DnsnetError('invalid', 'request body too large');
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return {};
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new DnsnetError('invalid', 'request body is not JSON');
  }
}

/** The log file, and with follow, what is appended until the container stops or the client leaves. */
async function streamLogs(engine: Engine, ref: string, follow: boolean, req: http.IncomingMessage, res: http.ServerResponse): Promise<typeof STREAMED> {
  const { path, running } = engine.logPath(ref);
  res.writeHead(200, { 'content-type': 'text/plain' });
  let offset = 0;
  let closed = false;
  req.on('close', () => (closed = true));
  const pump = async (): Promise<void> => {
    let fd: fs.promises.FileHandle | undefined;
    try {
      fd = await fs.promises.open(path, 'r');
      const buf = Buffer.alloc(64 * 1024);
      for (;;) {
        const { bytesRead } = await fd.read(buf, 0, buf.length, offset);
        if (bytesRead === 0) break;
        offset += bytesRead;
        res.write(Buffer.from(buf.subarray(0, bytesRead)));
      }
    } catch {
      // no log yet
    } finally {
      await fd?.close();
    }
  };
  await pump();
  while (follow && !closed && running()) {
    await new Promise((r) => setTimeout(r, 200));
    await pump();
  }
  if (follow) await pump();
  res.end();
  return STREAMED;
}
