// A small etcd v3 client on etcd's documented JSON gateway (HTTP/1.1 + JSON, keys and values base64,
// 64-bit numbers as strings). Why our own: the `etcd3` npm package has had no release since 2023 and open
// watch-reconnect issues, and dnsnet needs little: range, put, delete, the one transaction that claims a key
// (create_revision == 0), leases, and a watch that resumes where it left off. Every call tries the
// endpoints in turn (a member down costs one connection error); a watch reconnects to the next member and
// resumes from the revision after the last event it delivered.
import http from 'node:http';
import { DnsnetError } from '../errors.js';

export interface KeyValue {
  key: string;
  value: string;
  createRevision: number;
  modRevision: number;
  version: number;
  /** The lease the key is attached to ('0' when none). */
  lease: string;
}

export interface WatchEvent {
  type: 'put' | 'delete';
  kv: KeyValue;
}

export interface EtcdOptions {
  /** `http://IP:PORT` of each member (or IP:PORT). */
  endpoints: string[];
  /** Per request (connect and answer), ms. */
  timeoutMs?: number;
}

export interface Watch {
  close(): void;
}

interface RawKv {
  key?: string;
  value?: string;
  create_revision?: string;
  mod_revision?: string;
  version?: string;
  lease?: string;
}

/** Refusals that are a passing state of the cluster (an election under way), not an answer. */
const TRANSIENT = /leader changed|no leader|request timed out|too many requests|not capable|unavailable/i;
const TRANSIENT_RETRY_MS = 3000;

const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');
const unb64 = (text: string | undefined): string => (text ? Buffer.from(text, 'base64').toString('utf8') : '');

/** The end of a prefix range: the prefix with its last byte incremented (etcd's `--prefix`). */
export function prefixEnd(prefix: string): string {
  const bytes = Buffer.from(prefix, 'utf8');
  for (let i = bytes.length - 1; i >= 0; i--) {
    if (bytes[i]! < 0xff) {
      const end = Buffer.from(bytes.subarray(0, i + 1));
      end[i]!++;
      return end.toString('base64');
    }
  }
  return b64('\0'); // all 0xff: to the end of the keyspace
}

function kvOf(raw: RawKv): KeyValue {
  return {
    key: unb64(raw.key),
    value: unb64(raw.value),
    createRevision: Number(raw.create_revision ?? 0),
    modRevision: Number(raw.mod_revision ?? 0),
    version: Number(raw.version ?? 0),
    lease: raw.lease ?? '0',
  };
}

function normalise(endpoint: string): URL {
  return new URL(endpoint.includes('://') ? endpoint : `http://${endpoint}`);
}

export class Etcd {
  private readonly endpoints: URL[];
  private readonly timeoutMs: number;
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  /** The member that answered last: asked first next time. */
  private current = 0;

  constructor(opts: EtcdOptions) {
    if (opts.endpoints.length === 0) throw new DnsnetError('invalid', 'etcd: no endpoints');
    this.endpoints = opts.endpoints.map(normalise);
    this.timeoutMs = opts.timeoutMs ?? 2000;
  }

  /**
   * One JSON call, on each member in turn until one answers. A member's refusal stands (not retried), unless
   * it is a passing state of the cluster (an election: "leader changed", "no leader"; a request timed out in
   * raft): then the call is tried again, on the next member, for up to TRANSIENT_RETRY_MS.
   */
  async call<T>(path: string, body: unknown): Promise<T> {
    let last: unknown;
    const until = Date.now() + TRANSIENT_RETRY_MS;
    for (let k = 0; ; k++) {
      const i = (this.current + k) % this.endpoints.length;
      try {
        const out = await this.once<T>(this.endpoints[i]!, path, body);
        this.current = i;
        return out;
      } catch (error) {
        last = error;
        const transient = error instanceof DnsnetError && TRANSIENT.test(error.message);
        if (error instanceof DnsnetError && !transient) throw error; // the member answered: its answer stands
        if (transient) {
          if (Date.now() > until) throw error;
          await new Promise((r) => setTimeout(r, 50));
        } else if (k + 1 >= this.endpoints.length) break;
      }
    }
    throw new DnsnetError('kernel', `etcd ${path}: no member answered (${this.endpoints.map((e) => e.host).join(', ')}): ${(last as Error)?.message ?? last}`);
  }

  private once<T>(base: URL, path: string, body: unknown): Promise<T> {
    const payload = Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = http.request(
        { host: base.hostname, port: base.port, path, method: 'POST', agent: this.agent, timeout: this.timeoutMs, headers: { 'content-type': 'application/json', 'content-length': payload.length } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let json: unknown;
            try {
              json = JSON.parse(text);
            } catch {
              return reject(new Error(`${base.host}${path}: not JSON (HTTP ${res.statusCode})`));
            }
            if ((res.statusCode ?? 500) >= 400) {
              const m = (json as { message?: string; error?: string }).message ?? (json as { error?: string }).error ?? text;
              return reject(new DnsnetError('conflict', `etcd ${path}: ${m}`));
            }
            resolve(json as T);
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${base.host}: no answer within ${this.timeoutMs} ms`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** One key, or undefined. */
  async get(key: string): Promise<KeyValue | undefined> {
    const r = await this.call<{ kvs?: RawKv[] }>('/v3/kv/range', { key: b64(key) });
    return r.kvs?.[0] ? kvOf(r.kvs[0]) : undefined;
  }

  /** Every key under `prefix`, and the store's revision they were read at. */
  async range(prefix: string): Promise<{ kvs: KeyValue[]; revision: number }> {
    const r = await this.call<{ kvs?: RawKv[]; header?: { revision?: string } }>('/v3/kv/range', { key: b64(prefix), range_end: prefixEnd(prefix) });
    return { kvs: (r.kvs ?? []).map(kvOf), revision: Number(r.header?.revision ?? 0) };
  }

  /** Set `key` (attached to `lease` when given); the revision of the write. */
  async put(key: string, value: string, lease?: string): Promise<number> {
    const r = await this.call<{ header?: { revision?: string } }>('/v3/kv/put', { key: b64(key), value: b64(value), ...(lease ? { lease } : {}) });
    return Number(r.header?.revision ?? 0);
  }

  /** Delete `key`, or every key under it with `prefix`; how many went. */
  async delete(key: string, opts: { prefix?: boolean } = {}): Promise<number> {
    const r = await this.call<{ deleted?: string }>('/v3/kv/deleterange', { key: b64(key), ...(opts.prefix ? { range_end: prefixEnd(key) } : {}) });
    return Number(r.deleted ?? 0);
  }

  /**
   * Claim `key`: set it only if it does not exist (compare create_revision == 0), in one transaction, so of
   * any number of writers exactly one wins. True when this call made it.
   */
  async create(key: string, value: string, lease?: string): Promise<boolean> {
    const r = await this.call<{ succeeded?: boolean }>('/v3/kv/txn', {
      compare: [{ key: b64(key), target: 'CREATE', result: 'EQUAL', create_revision: '0' }],
      success: [{ request_put: { key: b64(key), value: b64(value), ...(lease ? { lease } : {}) } }],
    });
    return r.succeeded === true; // proto3 JSON leaves `false` out
  }

  /** Create every one of `kvs` in one transaction, only if none of them exists yet; true when this call made them. */
  async createAll(kvs: { key: string; value: string; lease?: string }[]): Promise<boolean> {
    const r = await this.call<{ succeeded?: boolean }>('/v3/kv/txn', {
      compare: kvs.map((kv) => ({ key: b64(kv.key), target: 'CREATE', result: 'EQUAL', create_revision: '0' })),
      success: kvs.map((kv) => ({ request_put: { key: b64(kv.key), value: b64(kv.value), ...(kv.lease ? { lease: kv.lease } : {}) } })),
    });
    return r.succeeded === true;
  }

  /** Delete every one of `keys` in one transaction. */
  async deleteAll(keys: string[]): Promise<void> {
    await this.call('/v3/kv/txn', { compare: [], success: keys.map((key) => ({ request_delete_range: { key: b64(key) } })) });
  }

  /** Set `key` only while it still has `modRevision` (0: does not exist); true when it did. */
  async replace(key: string, modRevision: number, value: string, lease?: string): Promise<boolean> {
    const r = await this.call<{ succeeded?: boolean }>('/v3/kv/txn', {
      compare: [{ key: b64(key), target: 'MOD', result: 'EQUAL', mod_revision: String(modRevision) }],
      success: [{ request_put: { key: b64(key), value: b64(value), ...(lease ? { lease } : {}) } }],
    });
    return r.succeeded === true;
  }

  /** Delete `key` only while it still has `modRevision` (a claim of ours, not one made since). */
  async deleteIf(key: string, modRevision: number): Promise<boolean> {
    const r = await this.call<{ succeeded?: boolean }>('/v3/kv/txn', {
      compare: [{ key: b64(key), target: 'MOD', result: 'EQUAL', mod_revision: String(modRevision) }],
      success: [{ request_delete_range: { key: b64(key) } }],
    });
    return r.succeeded === true;
  }

  /** A lease of `ttlSeconds`; its ID (a decimal string). */
  async grant(ttlSeconds: number): Promise<string> {
    const r = await this.call<{ ID?: string; TTL?: string; error?: string }>('/v3/lease/grant', { TTL: String(ttlSeconds) });
    if (!r.ID) throw new DnsnetError('kernel', `etcd lease grant: ${r.error ?? 'no ID'}`);
    return r.ID;
  }

  /** Renew a lease; its TTL in seconds, 0 when it has expired (its keys are gone). */
  async keepAlive(lease: string): Promise<number> {
    const r = await this.call<{ result?: { TTL?: string } }>('/v3/lease/keepalive', { ID: lease });
    return Number(r.result?.TTL ?? 0);
  }

  /** End a lease now: its keys go at once. */
  async revoke(lease: string): Promise<void> {
    await this.call('/v3/lease/revoke', { ID: lease }).catch((error: unknown) => {
      if (!(error instanceof DnsnetError && /not found/.test(error.message))) throw error;
    });
  }

  /**
   * Watch every key under `prefix` from revision `from` (0: from now). `onEvents` gets each batch and its
   * revision, in order and once each: when a member goes away, the watch resumes on the next from the
   * revision after the last one delivered. `onState` hears when the watch is connected or lost. If the
   * store has compacted past that revision, `onCompacted` is called (read everything again, watch anew).
   */
  watch(prefix: string, from: number, handlers: { onEvents(events: WatchEvent[], revision: number): void; onState?(connected: boolean): void; onCompacted?(revision: number): void }): Watch {
    let closed = false;
    let next = from;
    let req: http.ClientRequest | undefined;
    let retry: NodeJS.Timeout | undefined;
    let attempt = 0;
    const connect = (): void => {
      if (closed) return;
      const base = this.endpoints[(this.current + attempt) % this.endpoints.length]!;
      const body = JSON.stringify({ create_request: { key: b64(prefix), range_end: prefixEnd(prefix), ...(next > 0 ? { start_revision: String(next) } : {}) } });
      let pending = '';
      let up = false;
      const lost = (): void => {
        if (closed || req === undefined) return;
        req = undefined;
        if (up) handlers.onState?.(false);
        attempt++;
        retry = setTimeout(connect, up ? 0 : 200);
      };
      req = http.request({ host: base.hostname, port: base.port, path: '/v3/watch', method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          pending += chunk;
          let nl: number;
          // The gateway writes one JSON object per message; objects end where a line does.
          while ((nl = pending.indexOf('\n')) >= 0) {
            const line = pending.slice(0, nl).trim();
            pending = pending.slice(nl + 1);
            if (line === '') continue;
            let msg: { result?: { created?: boolean; compact_revision?: string; events?: { type?: string; kv?: RawKv }[]; header?: { revision?: string } } };
            try {
              msg = JSON.parse(line);
            } catch {
              continue;
            }
            const r = msg.result;
            if (!r) continue;
            if (r.created && !up) {
              up = true;
              handlers.onState?.(true);
            }
            if (r.compact_revision && Number(r.compact_revision) > 0) {
              handlers.onCompacted?.(Number(r.compact_revision));
              continue;
            }
            if (r.events && r.events.length > 0) {
              const events: WatchEvent[] = r.events.map((e) => ({ type: e.type === 'DELETE' ? 'delete' : 'put', kv: kvOf(e.kv ?? {}) }));
              // Resume after the last event delivered (not the header's revision: that is the store's).
              const rev = Math.max(...events.map((e) => e.kv.modRevision));
              next = rev + 1;
              handlers.onEvents(events, rev);
            }
          }
        });
        res.on('end', lost);
        res.on('error', lost);
        res.on('close', lost);
      });
      req.on('error', lost);
      // One create request, the whole body: the gateway keeps streaming the answer until we close.
      req.end(body);
    };
    connect();
    return {
      close: () => {
        closed = true;
        clearTimeout(retry);
        const r = req;
        req = undefined;
        r?.destroy();
      },
    };
  }

  close(): void {
    this.agent.destroy();
  }
}
