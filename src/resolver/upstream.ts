// Forwarding from the host netns: tries upstreams in order (at most 3), remembers dead ones, matches replies strictly.
import dgram from 'node:dgram';
import net from 'node:net';
import { randomFillSync } from 'node:crypto';
import type { Transport } from './handler.js';
import { nativeUdp, sameSockaddr, sockaddr, type NativeUdp } from './native-udp.js';

export const DEFAULT_UPSTREAM_TIMEOUT_MS = 1500;
/** Whole forwarding budget: well inside glibc's 5 s per try, so a client always gets our SERVFAIL first. */
export const FORWARD_BUDGET_MS = 3500;
export const DEAD_FOR_MS = 30_000;
export const MAX_TRIES = 3;
const UDP_POOL = 8; // sockets per family, each on a kernel-chosen random port
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

/**
 * One forwarded query: where it is in its upstream order, and its attempt in flight. A UDP attempt is
 * listed in the forwarder's `inflight` under its upstream ID; the job itself is that entry, so a
 * forwarded query costs this one object rather than a pending record and a closure per step.
 */
interface Job {
  /** The client's query (our copy); its ID is rewritten for each attempt and restored at the end. */
  query: Buffer;
  /** End of its question: a reply must repeat query[12, qEnd). */
  qEnd: number;
  clientId: number;
  transport: Transport;
  order: UpstreamAddress[];
  /** Attempts made so far; order[tries - 1] is the one in flight. */
  tries: number;
  deadline: number;
  failures: ForwardFailure[] | undefined;
  done: ForwardCallback;
  /** UDP attempt in flight: the socket it went out on (a reply must come back on it), its ID (-1: none). */
  entry: PooledSocket | undefined;
  id: number;
  /** When it times out (ms, Date.now() clock). */
  at: number;
  /** Timed out by the forwarder's sweep (the usual, full timeout), not by a timer of its own. */
  swept: boolean;
  timer: NodeJS.Timeout | undefined;
}

interface PooledSocket {
  /** A dgram socket, or a udpbatch handle (`native`) when the addon is loaded. */
  socket?: dgram.Socket;
  native?: object;
}

const ID_SPACE = 0x10000;
/**
 * UDP attempts in flight at once, over all containers (dnsmasq's default is 150). A quarter of the ID
 * space: a random free ID is then found in ~1.3 draws. Beyond it a query gets SERVFAIL at once; the
 * resolver's 100 per container keeps one container from taking them all.
 */
export const MAX_IN_FLIGHT = 16384;

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

export class UpstreamForwarder {
  private readonly timeoutMs: number;
  private readonly budgetMs: number;
  private readonly dead = new Map<string, number>(); // key -> dead until (ms)
  private readonly pools: Record<4 | 6, PooledSocket[]> = { 4: [], 6: [] };
  /** dgram sockets for upstreams the addon cannot address (scoped IPv6), or for all without the addon. */
  private readonly dgramPools: Record<4 | 6, PooledSocket[]> = { 4: [], 6: [] };
  private readonly nat: NativeUdp | null;
  /**
   * Attempts in flight, by upstream query ID (unique over all of this forwarder's sockets); allocated on
   * the first UDP attempt. A plain array, not a Map: a Map that is added to and deleted from at this rate
   * is rehashed often, and V8 keeps a link from each retired table to its successor. Once a full GC had
   * moved a live table to the old space, that chain of dead tables kept every later table, and the
   * attempts in them, alive through scavenges: forwarding then promoted megabytes per scavenge and ran
   * a full GC every few hundred ms (measured: scavenges 0.3 -> 14 ms, rate down by a third).
   */
  private inflight: (Job | undefined)[] | undefined;
  private inflightCount = 0;
  /**
   * Attempts that wait the full timeout are timed out by one periodic sweep over `inflight`, running
   * only while any are pending: a setTimeout per forwarded query (a Timeout object, its closures and a
   * timer-list entry each, promoted to the old space while in flight) showed as frequent full GCs.
   */
  private sweepTimer: NodeJS.Timeout | undefined;
  private readonly sweepEveryMs: number;
  private readonly maxInFlight: number;
  private next = 0;
  private closed = false;
  private readonly tcpConns = new Set<net.Socket>();
  /** Parsed, capped server lists by list identity (the resolver keeps one array per upstream set). */
  private readonly parsed = new WeakMap<string[], UpstreamAddress[]>();
  /** Replies that did not match an outstanding query (wrong ID, question, source), counted. */
  mismatched = 0;

  constructor(opts: { timeoutMs?: number; budgetMs?: number; native?: boolean; maxInFlight?: number } = {}) {
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_UPSTREAM_TIMEOUT_MS;
    this.budgetMs = opts.budgetMs ?? Math.min(FORWARD_BUDGET_MS, this.timeoutMs * MAX_TRIES);
    // A timeout fires up to this late: 100 ms for the default 1.5 s, finer for short test timeouts.
    this.sweepEveryMs = Math.max(5, Math.min(100, Math.floor(this.timeoutMs / 10)));
    this.nat = opts.native === false ? null : nativeUdp();
    this.maxInFlight = Math.min(opts.maxInFlight ?? MAX_IN_FLIGHT, ID_SPACE / 2);
  }

  /** Upstreams in the order they will be tried: live ones in configured order, then dead ones; at most 3. */
  order(servers: string[]): UpstreamAddress[] {
    if (this.dead.size === 0) {
      // Nothing remembered dead (the normal case): the configured order, parsed once per list.
      let list = this.parsed.get(servers);
      if (!list) {
        list = [];
        for (const s of servers) {
          const u = parseUpstream(s);
          if (u) list.push(u);
        }
        list = list.slice(0, MAX_TRIES);
        this.parsed.set(servers, list);
      }
      return list;
    }
    const now = Date.now();
    const alive: UpstreamAddress[] = [];
    const dead: UpstreamAddress[] = [];
    for (const s of servers) {
      const u = parseUpstream(s);
      if (!u) continue;
      const until = this.dead.get(u.key);
      if (until !== undefined && until > now) dead.push(u);
      else {
        if (until !== undefined) this.dead.delete(u.key);
        alive.push(u);
      }
    }
    return [...alive, ...dead].slice(0, MAX_TRIES);
  }

  /**
   * Forward `query` (client bytes, `qEnd` = end of its question) over `transport`, in order, until one
   * upstream answers with anything but SERVFAIL/REFUSED. The reply is passed back verbatim but for the ID.
   */
  forward(query: Buffer, qEnd: number, servers: string[], transport: Transport): Promise<ForwardResult> {
    return new Promise((resolve) => this.forwardCb(query, qEnd, servers, transport, (reply, failures) => resolve({ reply: reply ? Buffer.from(reply) : null, failures })));
  }

  /**
   * `forward` without promises, for the hot path: `done` is called exactly once. The query's ID is
   * rewritten in place for each attempt and restored before `done`. The reply given to `done` may be a
   * view into a shared receive buffer: use it (send it on, copy it) before returning.
   */
  forwardCb(query: Buffer, qEnd: number, servers: string[], transport: Transport, done: ForwardCallback): void {
    const job: Job = {
      query,
      qEnd,
      clientId: query.readUInt16BE(0),
      transport,
      order: this.order(servers),
      tries: 0,
      deadline: Date.now() + this.budgetMs,
      failures: undefined,
      done,
      entry: undefined,
      id: -1,
      at: 0,
      swept: false,
      timer: undefined,
    };
    this.nextAttempt(job);
  }

  private nextAttempt(job: Job): void {
    const remaining = job.deadline - Date.now();
    if (job.tries >= job.order.length || remaining <= 0 || this.closed) return this.finish(job, null);
    const u = job.order[job.tries++]!;
    const timeout = Math.min(this.timeoutMs, remaining);
    if (job.transport === 'tcp') {
      this.askTcp(u, job.query, job.qEnd, timeout).then((o) => this.attemptEnded(job, o.reply, o.outcome, o.detail));
    } else this.askUdp(job, u, timeout);
  }

  /** The attempt in flight ended: done on an answer, else remember the failure and try the next upstream. */
  private attemptEnded(job: Job, reply: Buffer | null, outcome: AttemptOutcome, detail?: string): void {
    const u = job.order[job.tries - 1]!;
    if (outcome === 'answer' && reply) {
      if (this.dead.size > 0) this.dead.delete(u.key);
      // A UDP reply is handed on before the receive area is reused; a TCP one may share the connection's buffer.
      return this.finish(job, job.transport === 'tcp' ? Buffer.from(reply) : reply);
    }
    if (outcome === 'timeout' || outcome === 'error') this.dead.set(u.key, Date.now() + DEAD_FOR_MS);
    (job.failures ??= []).push({ server: u.key, outcome, ...(detail ? { detail } : {}) });
    this.nextAttempt(job);
  }

  private finish(job: Job, reply: Buffer | null): void {
    job.query.writeUInt16BE(job.clientId, 0);
    if (reply) reply.writeUInt16BE(job.clientId, 0);
    job.done(reply, job.failures ?? NO_FAILURES);
  }

  /** Servers currently remembered as dead. */
  deadServers(): string[] {
    const now = Date.now();
    return [...this.dead].filter(([, until]) => until > now).map(([k]) => k);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const c of this.tcpConns) c.destroy();
    const all = [...this.pools[4], ...this.pools[6], ...this.dgramPools[4], ...this.dgramPools[6]];
    this.pools[4] = [];
    this.pools[6] = [];
    this.dgramPools[4] = [];
    this.dgramPools[6] = [];
    const inflight = this.inflight;
    if (inflight) {
      for (let id = 0; id < ID_SPACE; id++) {
        const job = inflight[id];
        if (job) this.udpAttemptEnded(job, null, 'error', 'closed');
      }
    }
    clearTimeout(this.sweepTimer);
    this.sweepTimer = undefined;
    await Promise.all(
      all.map((p) => {
        if (p.native) {
          this.nat!.addon.close(p.native);
          return undefined;
        }
        return new Promise<void>((resolve) => p.socket!.close(() => resolve()));
      }),
    );
  }

  /** Which path serves upstream UDP: 'native' (udpbatch) or 'dgram'. */
  udpPath(): 'native' | 'dgram' {
    return this.nat ? 'native' : 'dgram';
  }

  private socketFor(family: 4 | 6, useNative: boolean): PooledSocket {
    if (useNative) {
      const pool = this.pools[family];
      if (pool.length < UDP_POOL) {
        const { addon, meta, addrs, rx, rxSlot, addrSlot } = this.nat!;
        const fd = addon.socket(family);
        const entry: PooledSocket = {};
        try {
          entry.native = addon.open(fd, (count) => {
            for (let i = 0; i < count; i++) {
              const len = meta[2 * i]!;
              if (len < 0) {
                this.mismatched++;
                continue;
              }
              // The reply outlives this callback (it is handed back to the client's side): copy it.
              this.onNativeReply(entry, rx.subarray(i * rxSlot, i * rxSlot + len), addrs, i * addrSlot, meta[2 * i + 1]!);
            }
          });
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
    const pool = this.dgramPools[family];
    if (pool.length < UDP_POOL) {
      const socket = dgram.createSocket({ type: family === 4 ? 'udp4' : 'udp6', lookup: literalLookup });
      const entry: PooledSocket = { socket };
      socket.on('message', (msg, rinfo) => this.onReply(entry, msg, rinfo));
      socket.on('error', () => {
        /* send errors surface in the send callback; nothing else to do */
      });
      socket.bind(0);
      socket.unref();
      pool.push(entry);
      return entry;
    }
    return pool[this.next++ % pool.length]!;
  }

  private onNativeReply(entry: PooledSocket, view: Buffer, addrs: Buffer, addrOff: number, addrLen: number): void {
    if (view.length < 12) return void this.mismatched++;
    const job = this.inflight?.[view.readUInt16BE(0)];
    const sa = job?.order[job.tries - 1]!.sockaddr;
    if (!job || job.entry !== entry || !sa || !sameSockaddr(addrs, addrOff, addrLen, sa) || !acceptable(view, job.query, job.qEnd)) return void this.mismatched++;
    // The view into the receive area is valid only during this call: forwardCb's callers use the reply
    // before returning (the resolver sends it on at once); forward() copies it for its promise.
    this.udpAttemptEnded(job, view, classify(view));
  }

  private onReply(entry: PooledSocket, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (msg.length < 12) return void this.mismatched++;
    const job = this.inflight?.[msg.readUInt16BE(0)];
    const u = job?.order[job.tries - 1];
    if (!job || !u || job.entry !== entry || u.port !== rinfo.port || u.host !== rinfo.address || !acceptable(msg, job.query, job.qEnd)) return void this.mismatched++;
    this.udpAttemptEnded(job, msg, classify(msg));
  }

  private askUdp(job: Job, u: UpstreamAddress, timeoutMs: number): void {
    let entry: PooledSocket;
    const useNative = this.nat !== null && u.sockaddr !== undefined;
    try {
      entry = this.socketFor(u.family, useNative);
    } catch (error) {
      return this.attemptEnded(job, null, 'error', (error as Error).message);
    }
    if (this.inflightCount >= this.maxInFlight) {
      // Our limit, not the upstream's fault: no other upstream is tried and none is remembered as dead.
      (job.failures ??= []).push({ server: u.key, outcome: 'error', detail: `${this.maxInFlight} queries already in flight upstream` });
      return this.finish(job, null);
    }
    const inflight = (this.inflight ??= new Array<Job | undefined>(ID_SPACE).fill(undefined));
    let id = randomId();
    while (inflight[id] !== undefined) id = randomId(); // at most half the IDs are taken
    const query = job.query;
    query.writeUInt16BE(id, 0); // finish() restores the client's ID
    job.entry = entry;
    job.id = id;
    job.at = Date.now() + timeoutMs;
    // The usual attempt waits the full timeout: the shared sweep. A shorter one (the budget is nearly
    // spent) gets a timer of its own, to the ms.
    job.swept = timeoutMs === this.timeoutMs;
    if (!job.swept) job.timer = setTimeout(() => this.udpAttemptEnded(job, null, 'timeout'), timeoutMs);
    inflight[id] = job;
    this.inflightCount++;
    if (job.swept && !this.sweepTimer) this.armSweep();
    try {
      if (entry.native) {
        // Queued while a batch is being handled (one sendmmsg for all), else sent at once. A send the
        // kernel refuses is noticed as a timeout, as a lost datagram would be.
        this.nat!.addon.sendTo(entry.native, query, query.length, u.sockaddr!);
        return;
      }
      const attempt = job.tries;
      entry.socket!.send(query, u.port, u.host, (err) => {
        if (err && job.tries === attempt && job.id === id) this.udpAttemptEnded(job, null, 'error', err.message);
      });
    } catch (error) {
      this.udpAttemptEnded(job, null, 'error', (error as Error).message);
    }
  }

  /** A UDP attempt ended (reply, timeout, send error, close): off the in-flight list, then attemptEnded. */
  private udpAttemptEnded(job: Job, reply: Buffer | null, outcome: AttemptOutcome, detail?: string): void {
    if (job.id < 0) return;
    this.inflight![job.id] = undefined;
    this.inflightCount--;
    job.id = -1;
    job.entry = undefined;
    if (job.timer) {
      clearTimeout(job.timer);
      job.timer = undefined;
    }
    this.attemptEnded(job, reply, outcome, detail);
  }

  private armSweep(): void {
    this.sweepTimer = setTimeout(() => this.sweep(), this.sweepEveryMs);
    this.sweepTimer.unref();
  }

  /** Time out every swept attempt that is due; keep sweeping while any attempt is in flight. */
  private sweep(): void {
    this.sweepTimer = undefined;
    const inflight = this.inflight;
    if (!inflight || this.closed) return;
    const now = Date.now();
    for (let id = 0; id < ID_SPACE; id++) {
      const job = inflight[id];
      if (job !== undefined && job.swept && job.at <= now) this.udpAttemptEnded(job, null, 'timeout'); // clears inflight[id]
    }
    if (this.inflightCount > 0) this.armSweep();
  }

  private askTcp(u: UpstreamAddress, query: Buffer, qEnd: number, timeoutMs: number): Promise<{ reply: Buffer | null; outcome: AttemptOutcome; detail?: string }> {
    return new Promise((resolve) => {
      const id = randomId();
      const framed = Buffer.allocUnsafe(query.length + 2);
      framed.writeUInt16BE(query.length, 0);
      query.copy(framed, 2);
      framed.writeUInt16BE(id, 2);
      let done = false;
      let buffered: Buffer = Buffer.alloc(0);
      const sock = net.connect({ host: u.host, port: u.port });
      this.tcpConns.add(sock);
      const finish = (reply: Buffer | null, outcome: AttemptOutcome, detail?: string): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.tcpConns.delete(sock);
        sock.destroy();
        resolve({ reply, outcome, ...(detail ? { detail } : {}) });
      };
      const timer = setTimeout(() => finish(null, 'timeout'), timeoutMs);
      sock.on('connect', () => sock.write(framed));
      sock.on('data', (chunk: Buffer) => {
        buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
        while (buffered.length >= 2) {
          const len = buffered.readUInt16BE(0);
          if (buffered.length < 2 + len) return;
          const msg = buffered.subarray(2, 2 + len);
          buffered = buffered.subarray(2 + len);
          if (len >= 12 && msg.readUInt16BE(0) === id && acceptable(msg, query, qEnd)) return finish(msg, classify(msg));
          this.mismatched++;
        }
      });
      sock.on('error', (err) => finish(null, 'error', err.message));
      sock.on('close', () => finish(null, 'error', 'connection closed before a reply'));
    });
  }
}

function classify(reply: Buffer): AttemptOutcome {
  const rcode = reply[3]! & 0xf;
  if (rcode === 2) return 'servfail';
  if (rcode === 5) return 'refused';
  return 'answer';
}
