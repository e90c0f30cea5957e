// The embedded resolver: record store + handler + per-container sockets + forwarding, with counters and rate-limited logs.
import type dgram from 'node:dgram';
import type net from 'node:net';
import { DnsnetError } from '../errors.js';
import { RecordStore, type NameStyle, type ResolverContainer } from './records.js';
import { RCODE, buildRcodeReply, handleQuery, type ParsedQuery, type Transport } from './handler.js';
import { serve, type Serving } from './transport.js';
import { UpstreamForwarder, type ForwardCallback } from './upstream.js';
import { nativeUdp, nativeUdpUnavailable } from './native-udp.js';
import { countAnswer, FORWARD_BUCKETS, Histogram, LATENCY_SAMPLE_MASK, LOCAL_BUCKETS, newNetMetrics, type NetMetrics, type ResolverMetrics } from './metrics.js';

/**
 * Forwarded queries in flight per container: Docker's figure (1024). Beyond it queries wait in a queue of the
 * same size, each within its own forwarding budget, as Docker waits for a slot; past that, SERVFAIL at once.
 * Together they bound what one container can hold of the daemon (2048 queries of at most 64 KiB) and leave
 * the forwarder's 16384 for the others.
 */
export const MAX_INFLIGHT_PER_CONTAINER = 1024;
export const MAX_QUEUED_PER_CONTAINER = 1024;
const LOG_EVERY_MS = 10_000;

export interface ResolverOptions {
  log?: (line: string) => void;
  upstreamTimeoutMs?: number;
  /** Whole forwarding budget of a query (tests shorten it). */
  forwardBudgetMs?: number;
  maxInflightPerContainer?: number;
  maxQueuedPerContainer?: number;
  /** TCP idle timeout and connection cap per container (tests shorten these). */
  tcpIdleMs?: number;
  maxTcpConnections?: number;
  /** false: UDP through node:dgram even when the udpbatch addon is built (tests run both paths). */
  nativeUdp?: boolean;
  /** TTL of local answers (Docker's 600 by default; aardvark-dns answers with 0). */
  ttl?: number;
  /** Which names a container answers to, and its PTR (records.ts). */
  style?: NameStyle;
  /** The answer when forwarding is off for the asker: SERVFAIL (Docker's --internal) or NXDOMAIN (aardvark-dns's internal networks). */
  noForward?: 'servfail' | 'nxdomain';
  /** When every upstream refused: their REFUSED passed back (aardvark-dns) instead of SERVFAIL (Docker). */
  passRefused?: boolean;
}

/** How one asker's forwarded queries go out: its own servers, whether forwarding is allowed, from which netns. */
export interface AskerUpstreams {
  dns: string[];
  forward: boolean;
  /** Every forwarded query (the host's upstreams too) dialled from this netns: a server whose clients live in another netns than the daemon's. */
  upstreamNetns?: string | undefined;
}

export type ResolverRegistration = ResolverContainer & {
  dns: string[]; // --dns servers: replace the host upstreams for this container
  /** The container's netns (/run/netns path): its --dns servers are dialled from there, as Docker does. */
  dnsNetns?: string;
  forward: boolean; // false (only --internal networks): the host's upstreams are off limits (--dns servers are not)
  upstreamNetns?: string | undefined;
};

interface Counters {
  queries: number;
  local: number;
  forwarded: number;
  /** Answers by type and rcode, truncated answers (metrics.ts). */
  m: NetMetrics;
}

export interface ResolverStats {
  queries: number;
  local: number;
  forwarded: number;
  upstreamFailures: number;
  dropped: number;
  /** Forwarded queries that waited for a slot (over the per-container in-flight limit). */
  queued: number;
  /** Forwarded queries answered by an identical one's reply (retransmits, the same name from several containers). */
  merged: number;
  /** 'native' (udpbatch addon: recvmmsg/sendmmsg) or 'dgram' (node:dgram, when the addon is not there). */
  udpPath: 'native' | 'dgram';
  /** The addon's own counters (all sockets of this process), when it is loaded. */
  udpNative?: { received: number; sent: number; sendFailed: number; oversize: number; batches: number };
  perNetwork: Record<string, { queries: number; local: number; forwarded: number }>;
}

interface Queued {
  msg: Buffer;
  q: ParsedQuery;
  transport: Transport;
  respond: (reply: Buffer | null) => void;
  at: number;
}

interface Entry {
  id: string;
  registered: boolean;
  dns: string[];
  /** Where `dns` is dialled from: the container's netns path. */
  netns: string | undefined;
  /** Where every forwarded query is dialled from, when set. */
  upstreamNetns: string | undefined;
  forward: boolean;
  nets: Counters[];
  inflight: number;
  queue: Queued[];
  draining: boolean;
  serving?: Serving;
}

export class Resolver {
  private readonly store: RecordStore;
  private readonly entries = new Map<string, Entry>();
  /** Listeners many clients share (Podman's gateway addresses), by key: each query goes to the entry its sender routes to. */
  private readonly shared = new Map<string, Serving>();
  private readonly noForwardRcode: number;
  private readonly forwarder: UpstreamForwarder;
  private readonly log: (line: string) => void;
  private readonly maxInflight: number;
  private readonly maxQueued: number;
  private readonly tcpIdleMs: number | undefined;
  private readonly maxTcp: number | undefined;
  private readonly native: boolean;
  /** Set by the daemon from resolvconf's rule (the fallback included): none, nothing to forward to (SERVFAIL). */
  private hostUpstreams: string[] = [];
  private readonly totals = { queries: 0, local: 0, forwarded: 0, upstreamFailures: 0, dropped: 0, queued: 0 };
  private readonly perNetwork = new Map<string, Counters>();
  private readonly upstreamFailures = new Map<string, Map<string, number>>();
  private tcpConnections = 0;
  private readonly localLatency = new Histogram(LOCAL_BUCKETS);
  private readonly forwardLatency = new Histogram(FORWARD_BUCKETS);
  private readonly onConnection = (): void => void this.tcpConnections++;
  /** One answer in LATENCY_SAMPLE is timed (a clock read costs ~70 ns here, two per answer ~2 % of a local one). */
  private tick = 0;
  private readonly lastLog = new Map<string, { at: number; suppressed: number }>();
  private closed = false;

  constructor(opts: ResolverOptions = {}) {
    this.log = opts.log ?? ((line) => process.stderr.write(`${line}\n`));
    this.native = opts.nativeUdp !== false;
    this.store = new RecordStore({ ...(opts.ttl !== undefined ? { ttl: opts.ttl } : {}), ...(opts.style ? { style: opts.style } : {}) });
    this.noForwardRcode = opts.noForward === 'nxdomain' ? RCODE.NXDOMAIN : RCODE.SERVFAIL;
    this.forwarder = new UpstreamForwarder({
      ...(opts.upstreamTimeoutMs !== undefined ? { timeoutMs: opts.upstreamTimeoutMs } : {}),
      ...(opts.forwardBudgetMs !== undefined ? { budgetMs: opts.forwardBudgetMs } : {}),
      native: this.native,
      passRefused: opts.passRefused === true,
    });
    this.maxInflight = opts.maxInflightPerContainer ?? MAX_INFLIGHT_PER_CONTAINER;
    this.maxQueued = opts.maxQueuedPerContainer ?? MAX_QUEUED_PER_CONTAINER;
    this.tcpIdleMs = opts.tcpIdleMs;
    this.maxTcp = opts.maxTcpConnections;
    if (this.native && !nativeUdp()) {
      this.log(`[resolver] UDP through node:dgram, one datagram per callback (slower), and --dns servers dialled from the host netns, not the container's: ${nativeUdpUnavailable()}`);
    }
  }

  /** The host's resolv.conf nameservers (loopback ones too: we forward from the host netns). */
  setHostUpstreams(servers: string[]): void {
    this.hostUpstreams = [...servers];
  }

  /** Register or replace a container's names. Synchronous: no query ever sees a half-applied change. */
  upsert(c: ResolverRegistration): void {
    this.store.upsert(c);
    const e = this.entry(c.id);
    e.registered = true;
    // Keep the same array while the list is the same: the forwarder merges and caches by its identity.
    if (!sameList(e.dns, c.dns)) e.dns = [...c.dns];
    e.netns = c.dnsNetns;
    e.upstreamNetns = c.upstreamNetns;
    e.forward = c.forward;
    e.nets = [...new Set(c.endpoints.map((ep) => ep.network))].map((n) => this.netCounters(n));
  }

  /**
   * An asker with no names of its own (records.ts's `networkAsker`: a client that is no container, asking a
   * network's shared listener): where its forwarded queries go. Counted under `network`.
   */
  upsertAsker(id: string, network: string, up: AskerUpstreams): void {
    const e = this.entry(id);
    e.registered = true;
    if (!sameList(e.dns, up.dns)) e.dns = [...up.dns];
    e.upstreamNetns = up.upstreamNetns;
    e.forward = up.forward;
    e.nets = [this.netCounters(network)];
  }

  /**
   * Serve a listener many clients share (bound by the caller: Podman's gateway address and port). Each query
   * is answered for the asker `route` names for its sender's IP (a container's id, or a network asker).
   */
  serveShared(key: string, udp: dgram.Socket, tcp: net.Server, route: (source: string) => string): void {
    if (this.closed) throw new DnsnetError('internal', `serve ${key}: resolver closed`);
    const old = this.shared.get(key);
    this.shared.set(
      key,
      serve(udp, tcp, (msg, transport, respond, source) => this.onQuery(this.entries.get(route(source)) ?? this.entry(''), msg, transport, respond), {
        onError: (kind, error) => this.warn(kind, `${kind} (${key}): ${error instanceof Error ? error.message : String(error)}`),
        ...(this.tcpIdleMs !== undefined ? { idleMs: this.tcpIdleMs } : {}),
        ...(this.maxTcp !== undefined ? { maxConnections: this.maxTcp } : {}),
        native: this.native,
        source: true,
        onConnection: this.onConnection,
      }),
    );
    if (old) void old.close();
  }

  /** Stop serving a shared listener and close its sockets. */
  async closeShared(key: string): Promise<void> {
    const s = this.shared.get(key);
    this.shared.delete(key);
    await s?.close();
  }

  /** The sockets the forwarder made in `netns` (an upstream netns no one uses any more) are closed. */
  dropNetns(netns: string): Promise<void> {
    return this.forwarder.dropNetns(netns);
  }

  /** Forget a container's names. Its sockets, if still attached, keep answering (forwarding only). */
  remove(id: string): void {
    this.store.remove(id);
    const e = this.entries.get(id);
    if (!e) return;
    e.registered = false;
    e.dns = [];
    e.forward = true;
    e.upstreamNetns = undefined;
    e.nets = [];
    if (!e.serving) this.entries.delete(id);
  }

  /** Serve a container's sockets (bound to 127.0.0.11:53 in its netns). Queries are tied to `id` by socket. */
  attach(id: string, udp: dgram.Socket, tcp: net.Server): void {
    if (this.closed) throw new DnsnetError('internal', `attach resolver sockets of ${id.slice(0, 12)}: resolver closed`);
    const e = this.entry(id);
    const old = e.serving;
    e.serving = serve(udp, tcp, (msg, transport, respond) => this.onQuery(e, msg, transport, respond), {
      onError: (kind, error) => this.warn(kind, `${kind} (container ${id.slice(0, 12)}): ${error instanceof Error ? error.message : String(error)}`),
      ...(this.tcpIdleMs !== undefined ? { idleMs: this.tcpIdleMs } : {}),
      ...(this.maxTcp !== undefined ? { maxConnections: this.maxTcp } : {}),
      native: this.native,
      onConnection: () => {
        this.tcpConnections++;
        for (const n of e.nets) n.m.tcp++;
      },
    });
    if (old) void old.close();
  }

  /** Stop serving and close a container's sockets. */
  async detach(id: string): Promise<void> {
    const e = this.entries.get(id);
    if (!e?.serving) return;
    const s = e.serving;
    delete e.serving;
    e.queue = [];
    if (!e.registered) this.entries.delete(id);
    // Sockets made in its netns keep that netns alive: they go with the container.
    await Promise.all([s.close(), e.netns ? this.forwarder.dropNetns(e.netns) : undefined]);
  }

  /** The upstreams a container's forwarded queries go to, in order (--dns, else the host's as set, fallback included). */
  upstreamsFor(id: string): string[] {
    const e = this.entries.get(id);
    return [...(e && e.dns.length > 0 ? e.dns : this.hostUpstreams)];
  }

  stats(): ResolverStats {
    const perNetwork: Record<string, { queries: number; local: number; forwarded: number }> = {};
    for (const [n, c] of this.perNetwork) perNetwork[n] = { queries: c.queries, local: c.local, forwarded: c.forwarded };
    const n = this.native ? nativeUdp() : null;
    return { ...this.totals, merged: this.forwarder.merged, udpPath: this.udpPath(), ...(n ? { udpNative: n.addon.stats() } : {}), perNetwork };
  }

  /** 'native' when the forwarder and every attached container's UDP socket go through the addon. */
  private udpPath(): 'native' | 'dgram' {
    if (this.forwarder.udpPath() !== 'native') return 'dgram';
    for (const e of this.entries.values()) if (e.serving && e.serving.udpPath !== 'native') return 'dgram';
    for (const s of this.shared.values()) if (s.udpPath !== 'native') return 'dgram';
    return 'native';
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.entries.keys()].map((id) => this.detach(id)));
    await Promise.all([...this.shared.keys()].map((key) => this.closeShared(key)));
    await this.forwarder.close();
  }

  private entry(id: string): Entry {
    let e = this.entries.get(id);
    if (!e) this.entries.set(id, (e = { id, registered: false, dns: [], netns: undefined, upstreamNetns: undefined, forward: true, nets: [], inflight: 0, queue: [], draining: false }));
    return e;
  }

  private netCounters(network: string): Counters {
    let c = this.perNetwork.get(network);
    if (!c) this.perNetwork.set(network, (c = { queries: 0, local: 0, forwarded: 0, m: newNetMetrics() }));
    return c;
  }

  /** The counters for monitoring (a snapshot of the live objects: read them, do not keep them). */
  metrics(): ResolverMetrics {
    const perNetwork: Record<string, NetMetrics & { local: number; forwarded: number }> = {};
    for (const [n, c] of this.perNetwork) perNetwork[n] = { ...c.m, local: c.local, forwarded: c.forwarded };
    const upstreamFailures: Record<string, Record<string, number>> = {};
    for (const [u, m] of this.upstreamFailures) upstreamFailures[u] = Object.fromEntries(m);
    return { perNetwork, upstreamFailures, tcpConnections: this.tcpConnections, local: this.localLatency, forwarded: this.forwardLatency };
  }

  private countFailures(failures: readonly { server: string; outcome: string }[]): void {
    for (const f of failures) {
      let m = this.upstreamFailures.get(f.server);
      if (!m) this.upstreamFailures.set(f.server, (m = new Map()));
      m.set(f.outcome, (m.get(f.outcome) ?? 0) + 1);
    }
  }

  private onQuery(e: Entry, msg: Buffer, transport: Transport, respond: (reply: Buffer | null) => void): void {
    const t0 = (++this.tick & LATENCY_SAMPLE_MASK) === 0 ? performance.now() : 0;
    const t = this.totals;
    t.queries++;
    const nets = e.nets;
    for (let i = 0; i < nets.length; i++) nets[i]!.queries++;
    let result;
    try {
      result = handleQuery(msg, e.id, this.store, transport);
    } catch (error) {
      t.dropped++;
      for (let i = 0; i < nets.length; i++) nets[i]!.m.dropped++;
      this.warn('handler', `handler failed: ${error instanceof Error ? error.message : String(error)}`);
      respond(null);
      return;
    }
    if (result.action === 'reply') {
      t.local++;
      for (let i = 0; i < nets.length; i++) {
        const n = nets[i]!;
        n.local++;
        countAnswer(n.m, result.qtype, result.rcode);
        if (result.truncated) n.m.truncated++;
      }
      respond(result.reply);
      if (t0 !== 0) this.localLatency.observe((performance.now() - t0) / 1000);
      return;
    }
    if (result.action === 'drop') {
      t.dropped++;
      for (let i = 0; i < nets.length; i++) nets[i]!.m.dropped++;
      respond(null);
      return;
    }
    const q = result.query;
    if (!e.forward && e.dns.length === 0) {
      // --internal: nothing goes to the host's upstreams; answer at once rather than let the client time out.
      t.local++;
      for (let i = 0; i < nets.length; i++) {
        nets[i]!.local++;
        countAnswer(nets[i]!.m, q.qtype, this.noForwardRcode);
      }
      respond(buildRcodeReply(msg, q, this.noForwardRcode, transport));
      return;
    }
    // The transport may lend us its receive buffer only for this call (udpbatch): keep our own copy.
    msg = Buffer.from(msg);
    if (e.inflight >= this.maxInflight) {
      if (e.queue.length >= this.maxQueued) {
        t.dropped++;
        for (let i = 0; i < nets.length; i++) {
          nets[i]!.m.dropped++;
          countAnswer(nets[i]!.m, q.qtype, RCODE.SERVFAIL);
        }
        this.warn('inflight', `container ${e.id.slice(0, 12)}: ${this.maxInflight} queries in flight upstream and ${this.maxQueued} waiting: SERVFAIL`);
        respond(buildRcodeReply(msg, q, RCODE.SERVFAIL, transport));
        return;
      }
      // Wait for a slot, as Docker does; its budget runs from now.
      t.queued++;
      e.queue.push({ msg, q, transport, respond, at: Date.now() });
      return;
    }
    this.forwardNow(e, msg, q, transport, respond, undefined);
  }

  private forwardNow(e: Entry, msg: Buffer, q: ParsedQuery, transport: Transport, respond: (reply: Buffer | null) => void, arrived: number | undefined): void {
    const t = this.totals;
    const nets = e.nets;
    t.forwarded++;
    for (let i = 0; i < nets.length; i++) nets[i]!.forwarded++;
    e.inflight++;
    const own = e.dns.length > 0;
    const servers = own ? e.dns : this.hostUpstreams;
    const since = (++this.tick & LATENCY_SAMPLE_MASK) !== 0 ? 0 : arrived !== undefined ? performance.now() - (Date.now() - arrived) : performance.now();
    // Callbacks, not promises: two promise reactions per forwarded query showed in the profile.
    const done: ForwardCallback = (reply, failures) => {
      e.inflight--;
      const rcode = reply && reply.length >= 4 ? reply[3]! & 15 : RCODE.SERVFAIL;
      for (let i = 0; i < nets.length; i++) countAnswer(nets[i]!.m, q.qtype, rcode);
      if (since !== 0) this.forwardLatency.observe((performance.now() - since) / 1000);
      try {
        if (failures.length > 0) {
          this.countFailures(failures);
          t.upstreamFailures += failures.length;
          const what = failures.map((f) => `${f.server} ${f.outcome}${f.detail ? ` (${f.detail})` : ''}`).join(', ');
          this.warn(reply ? 'upstream-retry' : 'upstream-failed', `forward ${q.name || '.'}: ${what}${reply ? '' : ' -> SERVFAIL'}`);
        }
        respond(reply ?? buildRcodeReply(msg, q, RCODE.SERVFAIL, transport));
      } catch (error) {
        this.warn('handler', `reply to a forwarded query: ${error instanceof Error ? error.message : String(error)}`);
      }
      if (e.queue.length > 0) this.drainQueue(e);
    };
    try {
      // --dns servers from the container's own netns (Docker's rule); the host's from ours; everything from
      // the upstream netns when the asker lives behind one (a Podman network served from another netns).
      const netns = e.upstreamNetns ?? (own ? e.netns : undefined);
      this.forwarder.forwardCb(msg, q.qEnd, servers, transport, done, netns ? { netns, arrived } : arrived !== undefined ? { arrived } : undefined);
    } catch (error) {
      t.upstreamFailures++;
      this.countFailures(servers.map((server) => ({ server, outcome: 'error' })));
      this.warn('upstream-failed', `forward ${q.name || '.'}: ${error instanceof Error ? error.message : String(error)}`);
      done(null, []);
    }
  }

  /** Slots came free: forward the queries that waited, oldest first (one whose budget ran out gets SERVFAIL). */
  private drainQueue(e: Entry): void {
    if (e.draining) return; // a query that ends at once calls back into here: the loop below goes on
    e.draining = true;
    try {
      while (e.inflight < this.maxInflight && e.queue.length > 0) {
        const w = e.queue.shift()!;
        this.forwardNow(e, w.msg, w.q, w.transport, w.respond, w.at);
      }
    } finally {
      e.draining = false;
    }
  }

  /** One `[resolver]` line per kind per 10 s at most; the next line says how many were held back. */
  private warn(kind: string, line: string): void {
    const now = Date.now();
    const last = this.lastLog.get(kind);
    if (last && now - last.at < LOG_EVERY_MS) {
      last.suppressed++;
      return;
    }
    const extra = last && last.suppressed > 0 ? ` (${last.suppressed} similar suppressed)` : '';
    this.lastLog.set(kind, { at: now, suppressed: 0 });
    try {
      this.log(`[resolver] ${line}${extra}`);
    } catch {
      /* a broken logger must not break serving */
    }
  }
}

function sameList(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
