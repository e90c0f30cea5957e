// Forwarding: upstreams in order (at most 3), re-asked within one budget, late replies taken, identical
// questions in flight merged, refused ports noticed at once; from the host netns, or from a container's
// own netns for its --dns servers.
import dgram from 'node:dgram';
import net from 'node:net';
import { randomFillSync } from 'node:crypto';
import type { Transport } from './handler.js';
import { nativeUdp, sameSockaddr, sockaddr, type NativeUdp } from './native-udp.js';

/** How long an attempt waits before the next upstream is asked (or the same one again); it keeps listening. */
export const DEFAULT_UPSTREAM_TIMEOUT_MS = 1500;
/**
 * The whole forwarding budget of a query. Above Docker's 4 s wait for one upstream, so a cold recursive
 * resolver (1.5-3 s) still answers; below the 5 s glibc, Go and c-ares wait per try, so the client gets
 * our SERVFAIL before it gives up on us.
 */
export const FORWARD_BUDGET_MS = 4500;
export const DEAD_FOR_MS = 30_000;
export const MAX_TRIES = 3;
const UDP_POOL = 8; // host-netns sockets per family, each on a kernel-chosen random port
const NETNS_POOL = 2; // sockets per family in a container's netns (its --dns servers only)
const DGRAM_POOL = 4; // connected dgram sockets per upstream, on the fallback path
const DGRAM_UPSTREAMS = 32; // upstreams with dgram sockets kept; beyond, the oldest pool is closed
const NATIVE_RUN = 32; // consecutive queries per upstream socket on the udpbatch path

// Query IDs for upstreams come from the CSPRNG, drawn in bulk: one call per 4096 queries, not one each.
const idPool = Buffer.alloc(8192);
let idPos = idPool.length;
function randomId(): number {
  if (idPos >= idPool.length) {
    randomFillSync(idPool);
    idPos = 0;
  }
  const id = (idPool[idPos]! << 8) | idPool[idPos + 1]!;
  idPos += 2;
  return id;
}

/** Upstream hosts are IP literals (parseUpstream checks): skip dgram's dns.lookup and its tick per send. */
function literalLookup(host: string, _opts: unknown, callback: (err: Error | null, address: string, family: number) => void): void {
  callback(null, host, net.isIPv6(host) ? 6 : 4);
}

export type ForwardFailure = { server: string; outcome: AttemptOutcome; detail?: string };
/** `forwardCb`'s answer: the reply (or null when every upstream failed) and the failed attempts. */
export type ForwardCallback = (reply: Buffer | null, failures: readonly ForwardFailure[]) => void;
const NO_FAILURES: readonly ForwardFailure[] = Object.freeze([]);

export interface UpstreamAddress {
  key: string; // as configured
  host: string;
  port: number;
  family: 4 | 6;
  /** struct sockaddr for the udpbatch addon; absent for a scoped IPv6 address (dgram serves those). */
  sockaddr?: Buffer;
}

/** Parse `IP`, `IP:port` or `[v6]:port`; undefined when not an address. */
export function parseUpstream(text: string): UpstreamAddress | undefined {
  const s = text.trim();
  let host = s;
  let port = 53;
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(s);
  if (bracket) {
    host = bracket[1]!;
    if (bracket[2]) port = Number(bracket[2]);
  } else if (net.isIPv4(s.split(':')[0] ?? '') && s.includes(':')) {
    const [h, p] = s.split(':');
    host = h!;
    port = Number(p);
  }
  const family = net.isIP(host);
  if (family === 0 || !Number.isInteger(port) || port < 1 || port > 65535) return undefined;
  const sa = sockaddr(host, port, family as 4 | 6);
  return { key: s, host, port, family: family as 4 | 6, ...(sa ? { sockaddr: sa } : {}) };
}

export type AttemptOutcome = 'answer' | 'timeout' | 'servfail' | 'refused' | 'error';

export interface ForwardResult {
  /** The upstream's reply with the client's ID, or null when every upstream failed. */
  reply: Buffer | null;
  /** Failed attempts, by kind, in order. */
  failures: readonly ForwardFailure[];
}

/** Where a query is dialled from: the host netns (undefined) or a container's, by its /run/netns path. */
export interface ForwardOptions {
  netns?: string | undefined;
  /** When the client's query arrived (ms, Date.now clock), if it waited in a queue: the budget counts from then. */
  arrived?: number | undefined;
}

/** An identical query that arrived while the first was in flight: it gets the same reply, with its own ID and case. */
interface Waiter {
  query: Buffer;
  clientId: number;
  done: ForwardCallback;
}

/**
 * One forwarded query. Every UDP attempt it made is listed in the forwarder's `inflight` under its own
 * upstream ID until the job ends, so a reply to an earlier attempt (a slow upstream) is still taken.
 */
interface Job {
  /** The client's query (our copy); its ID is rewritten for each attempt and restored at the end. */
  query: Buffer;
  /** End of its question: a reply must repeat query[12, qEnd). */
  qEnd: number;
  clientId: number;
  transport: Transport;
  servers: string[];
  netns: string | undefined;
  order: UpstreamAddress[];
  /** order[next] is the first upstream not asked yet. */
  next: number;
  /**
   * Per upstream index i: bit i, it failed for good (SERVFAIL, REFUSED, port unreachable, send error); bit
   * SLOW + i, its attempt timed out (recorded once; a late reply still counts).
   */
  failed: number;
  /** The upstream asked last, and when that attempt times out (ms, Date.now clock). */
  cur: number;
  at: number;
  deadline: number;
  failures: ForwardFailure[] | undefined;
  done: ForwardCallback;
  /** UDP attempts: the newest one's ID (-1: none), the older ones' (some may have ended), how many are out. */
  id: number;
  older: number[] | undefined;
  live: number;
  /** TCP jobs (not swept): their connections and their own timer. */
  tcp: { conns: net.Socket[]; timer: NodeJS.Timeout | undefined } | undefined;
  waiters: Waiter[] | undefined;
  /** Merge table: the bucket's chain, and the query's hash. */
  hash: number;
  nextSame: Job | undefined;
  ended: boolean;
}

interface PooledSocket {
  /** A dgram socket (connected to one upstream on the fallback path), or a udpbatch handle (`native`). */
  socket?: dgram.Socket;
  native?: object;
}

const ID_SPACE = 0x10000;
/**
 * Queries in flight upstream at once, over all containers (dnsmasq's default is 150 in all). Each costs a
 * job, its copy of the query and its attempts' IDs; beyond it a query gets SERVFAIL at once. The resolver's
 * per-container limit keeps one container from taking them all.
 */
export const MAX_IN_FLIGHT = 16384;
/** UDP attempts (IDs) in flight at once: half the ID space, so a random free ID is found in ~2 draws. */
const MAX_ATTEMPTS = ID_SPACE / 2;
const SAME_BUCKETS = 4096;
/** Job.failed: bits 0..2 failed for good, bits SLOW..SLOW+2 timed out. */
const SLOW = 8;

/** Compare the first question of `reply` with `question` (raw bytes), ASCII case-insensitively. */
export function sameQuestion(reply: Buffer, question: Buffer): boolean {
  return questionMatches(reply, question, 0, question.length);
}

/** `sameQuestion` against src[start, end) (a query's question in place). */
function questionMatches(reply: Buffer, src: Buffer, start: number, end: number): boolean {
  const n = end - start;
  if (reply.length < 12 + n) return false;
  for (let i = 0; i < n; i++) {
    let a = reply[12 + i]!;
    let b = src[start + i]!;
    if (a >= 0x41 && a <= 0x5a) a |= 0x20;
    if (b >= 0x41 && b <= 0x5a) b |= 0x20;
    if (a !== b) return false;
  }
  return true;
}

/** A reply to `query` (whose question ends at qEnd), once ID and sender have matched. */
function acceptable(reply: Buffer, query: Buffer, qEnd: number): boolean {
  if (reply.length < 12 || !(reply[2]! & 0x80)) return false;
  const qd = reply.readUInt16BE(4);
  if (qd === 1) return questionMatches(reply, query, 12, qEnd);
  // Some servers drop the question from FORMERR / NOTIMP: ID, address and port still had to match.
  const rcode = reply[3]! & 0xf;
  return qd === 0 && (rcode === 1 || rcode === 4);
}

/** FNV-1a over everything but the ID, the question's letters folded: equal for queries `sameQuery` merges. */
function queryHash(q: Buffer, qEnd: number): number {
  let h = 0x811c9dc5;
  for (let i = 2; i < 12; i++) h = Math.imul(h ^ q[i]!, 0x01000193);
  for (let i = 12; i < qEnd; i++) h = Math.imul(h ^ (q[i]! | 0x20), 0x01000193); // case folded (and a few others with it: only a hash)
  for (let i = qEnd; i < q.length; i++) h = Math.imul(h ^ q[i]!, 0x01000193);
  return h >>> 0;
}

/** Same flags, counts, question (any case) and records: one upstream answer serves both. */
function sameQuery(a: Buffer, aEnd: number, b: Buffer, bEnd: number): boolean {
  if (a.length !== b.length || aEnd !== bEnd) return false;
  for (let i = 2; i < 12; i++) if (a[i] !== b[i]) return false;
  if (!questionMatches(a, b, 12, aEnd)) return false;
  for (let i = aEnd; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** An errno from the addon's error reports, as a failure detail. */
function errnoDetail(errno: number): string {
  if (errno === 111) return 'port unreachable'; // ECONNREFUSED: ICMP port unreachable
  if (errno === 113) return 'host unreachable';
  if (errno === 101) return 'network unreachable';
  return `ICMP error (errno ${errno})`;
}

export class UpstreamForwarder {
  private readonly timeoutMs: number;
  private readonly budgetMs: number;
  private readonly dead = new Map<string, number>(); // key (@netns) -> dead until (ms)
  private readonly pools: Record<4 | 6, PooledSocket[]> = { 4: [], 6: [] };
  /** Sockets in containers' netns (their --dns servers), by netns path; native path only. */
  private readonly nsPools = new Map<string, Record<4 | 6, PooledSocket[]>>();
  /** Fallback path (no addon): dgram sockets connected to one upstream each, so a refused port is seen. */
  private readonly dgramPools = new Map<string, PooledSocket[]>();
  private readonly nat: NativeUdp | null;
  /**
   * Jobs by the upstream ID of each of their UDP attempts (unique over all of this forwarder's sockets);
   * allocated on the first UDP attempt. A plain array, not a Map: a Map that is added to and deleted from at
   * this rate is rehashed often, and V8 keeps a link from each retired table to its successor. Once a full GC
   * had moved a live table to the old space, that chain of dead tables kept every later table, and the
   * attempts in them, alive through scavenges (measured: scavenges 0.3 -> 14 ms, rate down by a third).
   */
  private inflight: (Job | undefined)[] | undefined;
  /** Per attempt ID: which of its job's upstreams it went to, and the socket it left from (a reply must come back on it). */
  private attemptUp: Uint8Array | undefined;
  private attemptSock: (PooledSocket | undefined)[] | undefined;
  private attempts = 0;
  private jobs = 0;
  /** Jobs by query hash, to merge identical queries in flight (an array of chains, for the reason above). */
  private readonly same: (Job | undefined)[] = new Array<Job | undefined>(SAME_BUCKETS).fill(undefined);
  /**
   * UDP jobs are timed by one periodic sweep over `inflight`, running only while any are pending: a
   * setTimeout per forwarded query (a Timeout object, its closures and a timer-list entry each, promoted to
   * the old space while in flight) showed as frequent full GCs.
   */
  private sweepTimer: NodeJS.Timeout | undefined;
  private readonly sweepEveryMs: number;
  private readonly maxInFlight: number;
  private next = 0;
  private closed = false;
  /** Parsed server lists by list identity (the resolver keeps one array per upstream set): all, and the first 3. */
  private readonly parsed = new WeakMap<string[], { all: UpstreamAddress[]; first: UpstreamAddress[] }>();
  /** Replies that did not match an outstanding query (wrong ID, question, source), counted. */
  mismatched = 0;
  /** Queries answered by another identical query's reply. */
  merged = 0;

  constructor(opts: { timeoutMs?: number; budgetMs?: number; native?: boolean; maxInFlight?: number } = {}) {
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_UPSTREAM_TIMEOUT_MS;
    this.budgetMs = opts.budgetMs ?? Math.min(FORWARD_BUDGET_MS, this.timeoutMs * MAX_TRIES);
    // A timeout fires up to this late: 100 ms for the default 1.5 s, finer for short test timeouts.
    this.sweepEveryMs = Math.max(5, Math.min(100, Math.floor(this.timeoutMs / 10)));
    this.nat = opts.native === false ? null : nativeUdp();
    this.maxInFlight = Math.min(opts.maxInFlight ?? MAX_IN_FLIGHT, MAX_ATTEMPTS);
  }

  /** Upstreams in the order they will be tried: live ones in configured order, then dead ones; at most 3. */
  order(servers: string[], netns?: string): UpstreamAddress[] {
    let lists = this.parsed.get(servers);
    if (!lists) {
      const all: UpstreamAddress[] = [];
      for (const s of servers) {
        const u = parseUpstream(s);
        if (u) all.push(u);
      }
      this.parsed.set(servers, (lists = { all, first: all.slice(0, MAX_TRIES) }));
    }
    // Nothing remembered dead (the normal case): the configured order, parsed once per list.
    if (this.dead.size === 0) return lists.first;
    const now = Date.now();
    const alive: UpstreamAddress[] = [];
    const dead: UpstreamAddress[] = [];
    for (const u of lists.all) {
      const k = deadKey(u, netns);
      const until = this.dead.get(k);
      if (until !== undefined && until > now) dead.push(u);
      else {
        if (until !== undefined) this.dead.delete(k);
        alive.push(u);
      }
    }
    return [...alive, ...dead].slice(0, MAX_TRIES);
  }

  /**
   * Forward `query` (client bytes, `qEnd` = end of its question) over `transport` until an upstream answers
   * with anything but SERVFAIL/REFUSED. The reply is passed back verbatim but for the ID.
   */
  forward(query: Buffer, qEnd: number, servers: string[], transport: Transport, opts: ForwardOptions = {}): Promise<ForwardResult> {
    return new Promise((resolve) => this.forwardCb(query, qEnd, servers, transport, (reply, failures) => resolve({ reply: reply ? Buffer.from(reply) : null, failures }), opts));
  }

  /**
   * `forward` without promises, for the hot path: `done` is called exactly once. The query's ID is
   * rewritten in place for each attempt and restored before `done`. The reply given to `done` may be a
   * view into a shared receive buffer: use it (send it on, copy it) before returning.
   */
  forwardCb(query: Buffer, qEnd: number, servers: string[], transport: Transport, done: ForwardCallback, opts?: ForwardOptions): void {
    const netns = opts?.netns;
    const hash = queryHash(query, qEnd);
    const bucket = hash & (SAME_BUCKETS - 1);
    for (let j = this.same[bucket]; j !== undefined; j = j.nextSame) {
      if (j.hash === hash && j.transport === transport && j.servers === servers && j.netns === netns && sameQuery(j.query, j.qEnd, query, qEnd)) {
        // The same question is already on its way: one upstream answer serves both (a client's retransmit,
        // or the same name from several containers).
        (j.waiters ??= []).push({ query, clientId: query.readUInt16BE(0), done });
        this.merged++;
        return;
      }
    }
    const now = Date.now();
    const job: Job = {
      query,
      qEnd,
      clientId: query.readUInt16BE(0),
      transport,
      servers,
      netns,
      order: this.order(servers, netns),
      next: 0,
      failed: 0,
      cur: -1,
      at: 0,
      deadline: (opts?.arrived ?? now) + this.budgetMs,
      failures: undefined,
      done,
      id: -1,
      older: undefined,
      live: 0,
      tcp: transport === 'tcp' ? { conns: [], timer: undefined } : undefined,
      waiters: undefined,
      hash,
      nextSame: this.same[bucket],
      ended: false,
    };
    this.same[bucket] = job;
    this.jobs++;
    if (this.closed) return this.finish(job, null, -1);
    if (this.jobs > this.maxInFlight) {
      // Our limit, not the upstream's fault: no upstream is asked and none is remembered as dead.
      (job.failures ??= []).push({ server: job.order[0]?.key ?? '-', outcome: 'error', detail: `${this.maxInFlight} queries already in flight upstream` });
      return this.finish(job, null, -1);
    }
    this.ask(job);
  }

  /**
   * Ask the next upstream: one not asked yet, else (every one was) the next in turn that has not failed for
   * good, over UDP again; a TCP job just waits for its connections. Ends the job when nothing is left.
   */
  private ask(job: Job): void {
    if (job.ended) return;
    const now = Date.now();
    const remaining = job.deadline - now;
    const n = job.order.length;
    if (remaining <= 0 || this.closed) return this.finish(job, null, -1);
    let i = -1;
    if (job.next < n) i = job.next++;
    else if (job.transport === 'udp') {
      for (let k = 1; k <= n; k++) {
        const c = (job.cur + k) % n;
        if (!(job.failed & (1 << c))) {
          i = c;
          break;
        }
      }
    }
    if (i < 0) {
      if ((job.failed & 0xff) === (1 << n) - 1) return this.finish(job, null, -1); // every upstream failed for good
      // TCP: the connections made are still waiting; give them the rest of the budget.
      job.at = job.deadline;
      if (job.transport === 'tcp') this.armTcpTimer(job, remaining);
      return;
    }
    job.cur = i;
    job.at = now + Math.min(this.timeoutMs, remaining);
    if (job.transport === 'tcp') {
      this.armTcpTimer(job, job.at - now);
      this.askTcp(job, i);
    } else this.askUdp(job, i);
  }

  /** The attempt asked last is overdue: record it once, remember the upstream as slow, ask again. */
  private overdue(job: Job): void {
    const i = job.cur;
    if (Date.now() >= job.deadline) return this.finish(job, null, -1);
    const bit = 1 << i;
    if (!(job.failed & ((bit << SLOW) | bit))) {
      job.failed |= bit << SLOW;
      this.fail(job, i, 'timeout');
    }
    this.ask(job);
  }

  /** Upstream `i` of `job` failed: recorded, and remembered as dead for others when there are others to ask. */
  private fail(job: Job, i: number, outcome: AttemptOutcome, detail?: string): void {
    const u = job.order[i]!;
    if (outcome !== 'timeout') job.failed |= 1 << i;
    (job.failures ??= []).push({ server: u.key, outcome, ...(detail ? { detail } : {}) });
    // A dead upstream is only put last in the order: with one upstream that means nothing, and one slow
    // answer must not make it "dead" in the logs.
    if ((outcome === 'timeout' || outcome === 'error') && job.order.length > 1) this.dead.set(deadKey(u, job.netns), Date.now() + DEAD_FOR_MS);
  }

  /** An upstream answered for good with a failure (SERVFAIL, REFUSED, refused port): go on, or end. */
  private failedFor(job: Job, i: number, outcome: AttemptOutcome, detail?: string): void {
    if (job.ended || job.failed & (1 << i)) return;
    this.fail(job, i, outcome, detail);
    const n = job.order.length;
    if ((job.failed & 0xff) === (1 << n) - 1) return this.finish(job, null, -1);
    // The next upstream at once if one was not asked yet; else, while attempts are still out there, wait
    // for them (the sweep asks again when the newest is overdue) rather than ask one that was just asked.
    if (job.next < n || (job.transport === 'udp' && job.live === 0)) this.ask(job);
  }

  private finish(job: Job, reply: Buffer | null, from: number): void {
    if (job.ended) return;
    job.ended = true;
    this.jobs--;
    this.unlink(job);
    if (job.id >= 0) this.release(job, job.id);
    if (job.older) for (const id of job.older) this.release(job, id);
    job.id = -1;
    job.older = undefined;
    const tcp = job.tcp;
    if (tcp) {
      for (const c of tcp.conns) c.destroy();
      tcp.conns = [];
      clearTimeout(tcp.timer);
    }
    let failures = job.failures;
    if (reply && from >= 0) {
      const u = job.order[from]!;
      if (this.dead.size > 0) this.dead.delete(deadKey(u, job.netns));
      // It answered late: not a failure after all.
      if (failures && job.failed & (1 << (SLOW + from))) failures = failures.filter((f) => !(f.server === u.key && f.outcome === 'timeout'));
    }
    const list = failures && failures.length > 0 ? failures : NO_FAILURES;
    job.query.writeUInt16BE(job.clientId, 0);
    if (job.waiters) {
      for (const w of job.waiters) {
        w.query.writeUInt16BE(w.clientId, 0);
        let own: Buffer | null = null;
        if (reply) {
          own = Buffer.from(reply);
          own.writeUInt16BE(w.clientId, 0);
          if (own.readUInt16BE(4) === 1) w.query.copy(own, 12, 12, job.qEnd); // the question as this client wrote it
        }
        try {
          w.done(own, list);
        } catch {
          /* one client's callback must not keep the others from their answers */
        }
      }
    }
    if (reply) reply.writeUInt16BE(job.clientId, 0);
    job.done(reply, list);
  }

  private unlink(job: Job): void {
    const bucket = job.hash & (SAME_BUCKETS - 1);
    let j = this.same[bucket];
    if (j === job) {
      this.same[bucket] = job.nextSame;
    } else {
      while (j !== undefined && j.nextSame !== job) j = j.nextSame;
      if (j) j.nextSame = job.nextSame;
    }
    job.nextSame = undefined;
  }

  /** Servers currently remembered as dead. */
  deadServers(): string[] {
    const now = Date.now();
    return [...this.dead].filter(([, until]) => until > now).map(([k]) => k);
  }

  /** Queries in flight upstream (merged ones not counted). */
  inFlight(): number {
    return this.jobs;
  }

  async close(): Promise<void> {
    this.closed = true;
    const inflight = this.inflight;
    if (inflight) {
      for (let id = 0; id < ID_SPACE; id++) {
        const job = inflight[id];
        if (job) this.finish(job, null, -1);
      }
    }
    for (let b = 0; b < SAME_BUCKETS; b++) {
      while (this.same[b]) this.finish(this.same[b]!, null, -1); // TCP jobs
    }
    clearTimeout(this.sweepTimer);
    this.sweepTimer = undefined;
    const all = [...this.pools[4], ...this.pools[6], ...[...this.nsPools.values()].flatMap((p) => [...p[4], ...p[6]]), ...[...this.dgramPools.values()].flat()];
    this.pools[4] = [];
    this.pools[6] = [];
    this.nsPools.clear();
    this.dgramPools.clear();
    await Promise.all(all.map((p) => this.closeSocket(p)));
  }

  /**
   * A container's netns goes away: close the sockets made in it (a socket keeps its netns alive) and end the
   * queries that went out on them.
   */
  async dropNetns(netns: string): Promise<void> {
    const pool = this.nsPools.get(netns);
    if (!pool) return;
    this.nsPools.delete(netns);
    const socks = [...pool[4], ...pool[6]];
    this.endAttemptsOn(new Set(socks), 'closed');
    await Promise.all(socks.map((p) => this.closeSocket(p)));
  }

  private closeSocket(p: PooledSocket): Promise<void> | undefined {
    if (p.native) {
      this.nat!.addon.close(p.native);
      return undefined;
    }
    return new Promise<void>((resolve) => {
      try {
        p.socket!.close(() => resolve());
      } catch {
        resolve();
      }
    });
  }

  /** Fail every UDP attempt that went out on one of `socks` (closed, or told by the kernel the port is shut). */
  private endAttemptsOn(socks: Set<PooledSocket>, detail: string): void {
    const inflight = this.inflight;
    const bySock = this.attemptSock;
    if (!inflight || !bySock) return;
    for (let id = 0; id < ID_SPACE; id++) {
      const job = inflight[id];
      const s = bySock[id];
      if (job === undefined || s === undefined || !socks.has(s)) continue;
      const i = this.attemptUp![id]!;
      this.release(job, id);
      this.failedFor(job, i, 'error', detail);
    }
  }

  /** Which path serves upstream UDP: 'native' (udpbatch) or 'dgram'. */
  udpPath(): 'native' | 'dgram' {
    return this.nat ? 'native' : 'dgram';
  }

  private nativeSocket(family: 4 | 6, netns: string | undefined): PooledSocket {
    let pool: PooledSocket[];
    let size = UDP_POOL;
    if (netns === undefined) pool = this.pools[family];
    else {
      let p = this.nsPools.get(netns);
      if (!p) this.nsPools.set(netns, (p = { 4: [], 6: [] }));
      pool = p[family];
      size = NETNS_POOL;
    }
    if (pool.length < size) {
      const { addon, meta, addrs, addrSlot, big, bigSlot, errMark } = this.nat!;
      const fd = addon.socket(family, netns);
      const entry: PooledSocket = {};
      try {
        entry.native = addon.open(
          fd,
          (count) => {
            for (let i = 0; i < count; i++) {
              const len = meta[2 * i]!;
              if (len <= -errMark) this.onNativeError(entry, big, i * bigSlot, addrs, i * addrSlot, meta[2 * i + 1]!, -len - errMark);
              else if (len < 12) this.mismatched++;
              else this.onNativeReply(entry, big.subarray(i * bigSlot, i * bigSlot + len), addrs, i * addrSlot, meta[2 * i + 1]!);
            }
          },
          true,
        );
      } finally {
        addon.closeFd(fd); // open() keeps its own duplicate
      }
      addon.ref(entry.native, false);
      pool.push(entry);
      return entry;
    }
    // 32 queries in a row per socket, then the next: queries forwarded in one batch share a sendmmsg
    // and their replies one recvmmsg (round-robin per query made one syscall each, measured with
    // strace -c), while the source port still moves over the pool.
    return pool[Math.floor(this.next++ / NATIVE_RUN) % pool.length]!;
  }

  /** Fallback path: a dgram socket connected to `u`, so that an ICMP port unreachable comes back as an error. */
  private dgramSocket(u: UpstreamAddress): PooledSocket {
    let pool = this.dgramPools.get(u.key);
    if (!pool) {
      if (this.dgramPools.size >= DGRAM_UPSTREAMS) {
        const [oldKey, oldPool] = this.dgramPools.entries().next().value as [string, PooledSocket[]];
        this.dgramPools.delete(oldKey);
        this.endAttemptsOn(new Set(oldPool), 'closed');
        for (const p of oldPool) void this.closeSocket(p);
      }
      this.dgramPools.set(u.key, (pool = []));
    }
    if (pool.length < DGRAM_POOL) {
      const socket = dgram.createSocket({ type: u.family === 4 ? 'udp4' : 'udp6', lookup: literalLookup, recvBufferSize: 1 << 20 });
      const entry: PooledSocket = { socket };
      socket.on('message', (msg, rinfo) => this.onReply(entry, msg, rinfo));
      // A connected UDP socket reports the ICMP port unreachable of a datagram it sent as ECONNREFUSED.
      socket.on('error', (err: NodeJS.ErrnoException) => this.endAttemptsOn(new Set([entry]), err.code === 'ECONNREFUSED' ? 'port unreachable' : err.message));
      socket.connect(u.port, u.host);
      socket.unref();
      pool.push(entry);
      return entry;
    }
    return pool[this.next++ % pool.length]!;
  }

  private onNativeReply(entry: PooledSocket, view: Buffer, addrs: Buffer, addrOff: number, addrLen: number): void {
    const id = view.readUInt16BE(0);
    const job = this.inflight?.[id];
    if (!job || this.attemptSock![id] !== entry) return void this.mismatched++;
    const i = this.attemptUp![id]!;
    const sa = job.order[i]!.sockaddr;
    if (!sa || !sameSockaddr(addrs, addrOff, addrLen, sa) || !acceptable(view, job.query, job.qEnd)) return void this.mismatched++;
    // The view into the receive area is valid only during this call: forwardCb's callers use the reply
    // before returning (the resolver sends it on at once); forward() copies it for its promise.
    this.udpReply(job, id, i, view);
  }

  /** The kernel says a datagram we sent could not be delivered (ICMP port or host unreachable). */
  private onNativeError(entry: PooledSocket, payload: Buffer, off: number, addrs: Buffer, addrOff: number, addrLen: number, errno: number): void {
    const id = payload.readUInt16BE(off);
    const job = this.inflight?.[id];
    if (!job || this.attemptSock![id] !== entry) return;
    const i = this.attemptUp![id]!;
    const sa = job.order[i]!.sockaddr;
    if (!sa || !sameSockaddr(addrs, addrOff, addrLen, sa)) return;
    this.release(job, id);
    this.failedFor(job, i, 'error', errnoDetail(errno));
  }

  private onReply(entry: PooledSocket, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (msg.length < 12) return void this.mismatched++;
    const id = msg.readUInt16BE(0);
    const job = this.inflight?.[id];
    if (!job || this.attemptSock![id] !== entry) return void this.mismatched++;
    const i = this.attemptUp![id]!;
    const u = job.order[i]!;
    if (u.port !== rinfo.port || u.host !== rinfo.address || !acceptable(msg, job.query, job.qEnd)) return void this.mismatched++;
    this.udpReply(job, id, i, msg);
  }

  private udpReply(job: Job, id: number, i: number, reply: Buffer): void {
    const outcome = classify(reply);
    if (outcome === 'answer') return this.finish(job, reply, i);
    this.release(job, id);
    this.failedFor(job, i, outcome);
  }

  private askUdp(job: Job, i: number): void {
    const u = job.order[i]!;
    let entry: PooledSocket;
    const useNative = this.nat !== null && u.sockaddr !== undefined;
    try {
      entry = useNative ? this.nativeSocket(u.family, job.netns) : this.dgramSocket(u);
    } catch (error) {
      return this.failedFor(job, i, 'error', (error as Error).message);
    }
    if (this.attempts >= MAX_ATTEMPTS) {
      // The ID space is crowded: do not add attempts; the ones out there may still answer.
      if (job.live === 0) this.finish(job, null, -1);
      return;
    }
    if (!this.inflight) {
      this.inflight = new Array<Job | undefined>(ID_SPACE).fill(undefined);
      this.attemptUp = new Uint8Array(ID_SPACE);
      this.attemptSock = new Array<PooledSocket | undefined>(ID_SPACE).fill(undefined);
    }
    const inflight = this.inflight;
    let id = randomId();
    while (inflight[id] !== undefined) id = randomId(); // at most half the IDs are taken
    if (job.id >= 0) (job.older ??= []).push(job.id);
    job.id = id;
    inflight[id] = job;
    this.attemptUp![id] = i;
    this.attemptSock![id] = entry;
    this.attempts++;
    job.live++;
    if (!this.sweepTimer) this.armSweep();
    const query = job.query;
    query.writeUInt16BE(id, 0); // finish() restores the client's ID
    try {
      if (entry.native) {
        // Queued while a batch is being handled (one sendmmsg for all), else sent at once. A send the
        // kernel refuses is noticed as a timeout, as a lost datagram would be.
        this.nat!.addon.sendTo(entry.native, query, query.length, u.sockaddr!);
        return;
      }
      entry.socket!.send(query, (err) => {
        if (err && inflight[id] === job) {
          this.release(job, id);
          this.failedFor(job, i, 'error', err.message);
        }
      });
    } catch (error) {
      this.release(job, id);
      this.failedFor(job, i, 'error', (error as Error).message);
    }
  }

  /** Take one of `job`'s attempts off the in-flight list (the job stays, with its other attempts). */
  private release(job: Job, id: number): void {
    if (this.inflight![id] !== job) return; // ended before, and the ID may be another job's by now
    this.inflight![id] = undefined;
    this.attemptSock![id] = undefined;
    this.attempts--;
    job.live--;
    if (job.id === id) job.id = -1;
  }

  private armSweep(): void {
    this.sweepTimer = setTimeout(() => this.sweep(), this.sweepEveryMs);
    this.sweepTimer.unref();
  }

  /** Every UDP job whose newest attempt is overdue is asked on (or ended at its deadline); keep sweeping while any are out. */
  private sweep(): void {
    this.sweepTimer = undefined;
    const inflight = this.inflight;
    if (!inflight || this.closed) return;
    const now = Date.now();
    for (let id = 0; id < ID_SPACE; id++) {
      // overdue() asks again and moves `at` on, so a job seen again at another of its IDs is left alone.
      const job = inflight[id];
      if (job !== undefined && job.at <= now) this.overdue(job);
    }
    if (this.attempts > 0) this.armSweep();
  }

  private armTcpTimer(job: Job, ms: number): void {
    const tcp = job.tcp!;
    clearTimeout(tcp.timer);
    tcp.timer = setTimeout(() => {
      tcp.timer = undefined;
      this.overdue(job);
    }, Math.max(0, ms));
    tcp.timer.unref();
  }

  /** One TCP connection per attempt, from the host or the container's netns; the query goes out once connected. */
  private askTcp(job: Job, i: number): void {
    const u = job.order[i]!;
    let sock: net.Socket;
    try {
      if (job.netns !== undefined && this.nat && u.sockaddr) {
        // Made in the container's netns by the addon, its connect begun; the first write waits for it.
        const fd = this.nat.addon.tcpConnect(u.sockaddr, job.netns);
        sock = new net.Socket({ fd, readable: true, writable: true });
      } else {
        sock = net.connect({ host: u.host, port: u.port });
      }
    } catch (error) {
      const e = error as NodeJS.ErrnoException;
      return this.failedFor(job, i, 'error', e.code === 'ECONNREFUSED' ? 'port unreachable' : e.message);
    }
    job.tcp!.conns.push(sock);
    const id = randomId();
    const framed = Buffer.allocUnsafe(job.query.length + 2);
    framed.writeUInt16BE(job.query.length, 0);
    job.query.copy(framed, 2);
    framed.writeUInt16BE(id, 2);
    let buffered: Buffer = Buffer.alloc(0);
    let over = false;
    const end = (outcome: AttemptOutcome, detail?: string): void => {
      if (over) return;
      over = true;
      sock.destroy();
      job.tcp!.conns = job.tcp!.conns.filter((c) => c !== sock);
      this.failedFor(job, i, outcome, detail);
    };
    sock.write(framed);
    sock.on('data', (chunk: Buffer) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      while (buffered.length >= 2) {
        const len = buffered.readUInt16BE(0);
        if (buffered.length < 2 + len) return;
        const msg = buffered.subarray(2, 2 + len);
        buffered = buffered.subarray(2 + len);
        if (len >= 12 && msg.readUInt16BE(0) === id && acceptable(msg, job.query, job.qEnd)) {
          const outcome = classify(msg);
          if (outcome !== 'answer') return end(outcome);
          over = true;
          // The reply may share the connection's buffer: the job's owner gets its own copy.
          return this.finish(job, Buffer.from(msg), i);
        }
        this.mismatched++;
      }
    });
    sock.on('error', (err: NodeJS.ErrnoException) => end('error', err.code === 'ECONNREFUSED' ? 'port unreachable' : err.message));
    sock.on('close', () => end('error', 'connection closed before a reply'));
  }
}

function deadKey(u: UpstreamAddress, netns: string | undefined): string {
  return netns === undefined ? u.key : `${u.key}@${netns}`;
}

function classify(reply: Buffer): AttemptOutcome {
  const rcode = reply[3]! & 0xf;
  if (rcode === 2) return 'servfail';
  if (rcode === 5) return 'refused';
  return 'answer';
}
