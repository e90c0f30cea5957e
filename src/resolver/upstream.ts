// Forwarding: upstreams in order (at most 3), re-asked within one budget, late replies taken, identical
// questions in flight merged, refused ports noticed at once; from the host netns, or from a container's
// own netns for its --dns servers.
import type dgram from 'node:dgram';
import type net from 'node:net';
import type { Transport } from './handler.js';
import { sameSockaddr } from './native-udp.js';
import { acceptable, classify, errnoDetail, parseUpstream, queryHash, sameQuery, type AttemptOutcome, type UpstreamAddress } from './upstream-message.js';
import { UpstreamSockets, type PooledSocket } from './upstream-sockets.js';
import { AttemptTable, MAX_ATTEMPTS, type Tracked } from './attempts.js';

export { parseUpstream, sameQuestion, type AttemptOutcome, type UpstreamAddress } from './upstream-message.js';

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

export type ForwardFailure = { server: string; outcome: AttemptOutcome; detail?: string };
/** `forwardCb`'s answer: the reply (or null when every upstream failed) and the failed attempts. */
export type ForwardCallback = (reply: Buffer | null, failures: readonly ForwardFailure[]) => void;
const NO_FAILURES: readonly ForwardFailure[] = Object.freeze([]);

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
 * One forwarded query. Every UDP attempt it made is listed in the forwarder's table under its own
 * upstream ID until the job ends, so a reply to an earlier attempt (a slow upstream) is still taken.
 */
interface Job extends Tracked<Job> {
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
  /** TCP jobs (not swept): their connections and their own timer. */
  tcp: { conns: net.Socket[]; timer: NodeJS.Timeout | undefined } | undefined;
  waiters: Waiter[] | undefined;
  /** The last REFUSED reply, kept when REFUSED is passed back once every upstream refused (passRefused). */
  refused: Buffer | undefined;
  ended: boolean;
}

/**
 * Queries in flight upstream at once, over all containers (dnsmasq's default is 150 in all). Each costs a
 * job, its copy of the query and its attempts' IDs; beyond it a query gets SERVFAIL at once. The resolver's
 * per-container limit keeps one container from taking them all.
 */
export const MAX_IN_FLIGHT = 16384;
/** Job.failed: bits 0..2 failed for good, bits SLOW..SLOW+2 timed out. */
const SLOW = 8;

export class UpstreamForwarder {
  private readonly timeoutMs: number;
  private readonly budgetMs: number;
  private readonly dead = new Map<string, number>(); // key (@netns) -> dead until (ms)
  private readonly sockets: UpstreamSockets;
  /** Jobs by the ID of each of their UDP attempts, and identical queries in flight. */
  private readonly table = new AttemptTable<Job, PooledSocket>();
  private jobs = 0;
  /**
   * UDP jobs are timed by one periodic sweep over the table, running only while any are pending: a
   * setTimeout per forwarded query (a Timeout object, its closures and a timer-list entry each, promoted to
   * the old space while in flight) showed as frequent full GCs.
   */
  private sweepTimer: NodeJS.Timeout | undefined;
  private readonly sweepEveryMs: number;
  private readonly maxInFlight: number;
  /** Every upstream refused: pass the last REFUSED back (aardvark-dns's way) rather than SERVFAIL (Docker's). */
  private readonly passRefused: boolean;
  private closed = false;
  /** Parsed server lists by list identity (the resolver keeps one array per upstream set): all, and the first 3. */
  private readonly parsed = new WeakMap<string[], { all: UpstreamAddress[]; first: UpstreamAddress[] }>();
  /** Replies that did not match an outstanding query (wrong ID, question, source), counted. */
  mismatched = 0;
  /** Queries answered by another identical query's reply. */
  merged = 0;

  constructor(opts: { timeoutMs?: number; budgetMs?: number; native?: boolean; maxInFlight?: number; passRefused?: boolean } = {}) {
    this.passRefused = opts.passRefused === true;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_UPSTREAM_TIMEOUT_MS;
    this.budgetMs = opts.budgetMs ?? Math.min(FORWARD_BUDGET_MS, this.timeoutMs * MAX_TRIES);
    // A timeout fires up to this late: 100 ms for the default 1.5 s, finer for short test timeouts.
    this.sweepEveryMs = Math.max(5, Math.min(100, Math.floor(this.timeoutMs / 10)));
    this.sockets = new UpstreamSockets(opts.native !== false, {
      reply: (entry, view, addrs, addrOff, addrLen) => this.onNativeReply(entry, view, addrs, addrOff, addrLen),
      icmpError: (entry, payload, off, addrs, addrOff, addrLen, errno) => this.onNativeError(entry, payload, off, addrs, addrOff, addrLen, errno),
      dgramReply: (entry, msg, rinfo) => this.onReply(entry, msg, rinfo),
      lost: (socks, detail) => this.endAttemptsOn(socks, detail),
      runt: () => void this.mismatched++,
    });
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
    // A loop, not a predicate callback: no closure per forwarded query.
    for (let j = this.table.chain(hash); j !== undefined; j = j.nextSame) {
      if (j.hash !== hash || j.transport !== transport || j.servers !== servers || j.netns !== netns || !sameQuery(j.query, j.qEnd, query, qEnd)) continue;
      // The same question is already on its way: one upstream answer serves both (a client's retransmit,
      // or the same name from several containers).
      (j.waiters ??= []).push({ query, clientId: query.readUInt16BE(0), done });
      this.merged++;
      return;
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
      refused: undefined,
      hash,
      nextSame: undefined,
      ended: false,
    };
    this.table.link(job);
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
  private failedFor(job: Job, i: number, outcome: AttemptOutcome, detail?: string, reply?: Buffer): void {
    if (job.ended || job.failed & (1 << i)) return;
    this.fail(job, i, outcome, detail);
    if (reply && this.passRefused) job.refused = reply;
    const n = job.order.length;
    if ((job.failed & 0xff) === (1 << n) - 1) return this.finish(job, job.refused ?? null, -1);
    // The next upstream at once if one was not asked yet; else, while attempts are still out there, wait
    // for them (the sweep asks again when the newest is overdue) rather than ask one that was just asked.
    if (job.next < n || (job.transport === 'udp' && job.live === 0)) this.ask(job);
  }

  private finish(job: Job, reply: Buffer | null, from: number): void {
    if (job.ended) return;
    job.ended = true;
    this.jobs--;
    this.table.unlink(job);
    this.table.releaseAll(job);
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
    for (const job of this.table.linked()) this.finish(job, null, -1);
    clearTimeout(this.sweepTimer);
    this.sweepTimer = undefined;
    await this.sockets.closeAll();
  }

  /** A container's netns goes away: its sockets close, and the queries that went out on them end. */
  dropNetns(netns: string): Promise<void> {
    return this.sockets.dropNetns(netns);
  }

  /** Fail every UDP attempt that went out on one of `socks` (closed, or told by the kernel the port is shut). */
  private endAttemptsOn(socks: Set<PooledSocket>, detail: string): void {
    this.table.forEach((job, id, sock) => {
      if (!socks.has(sock)) return;
      const i = this.table.upstreamOf(id);
      this.table.release(job, id);
      this.failedFor(job, i, 'error', detail);
    });
  }

  /** Which path serves upstream UDP: 'native' (udpbatch) or 'dgram'. */
  udpPath(): 'native' | 'dgram' {
    return this.sockets.nat ? 'native' : 'dgram';
  }

  private onNativeReply(entry: PooledSocket, view: Buffer, addrs: Buffer, addrOff: number, addrLen: number): void {
    const id = view.readUInt16BE(0);
    const job = this.table.get(id, entry);
    if (!job) return void this.mismatched++;
    const i = this.table.upstreamOf(id);
    const sa = job.order[i]!.sockaddr;
    if (!sa || !sameSockaddr(addrs, addrOff, addrLen, sa) || !acceptable(view, job.query, job.qEnd)) return void this.mismatched++;
    // The view into the receive area is valid only during this call: forwardCb's callers use the reply
    // before returning (the resolver sends it on at once); forward() copies it for its promise.
    this.udpReply(job, id, i, view);
  }

  /** The kernel says a datagram we sent could not be delivered (ICMP port or host unreachable). */
  private onNativeError(entry: PooledSocket, payload: Buffer, off: number, addrs: Buffer, addrOff: number, addrLen: number, errno: number): void {
    const id = payload.readUInt16BE(off);
    const job = this.table.get(id, entry);
    if (!job) return;
    const i = this.table.upstreamOf(id);
    const sa = job.order[i]!.sockaddr;
    if (!sa || !sameSockaddr(addrs, addrOff, addrLen, sa)) return;
    this.table.release(job, id);
    this.failedFor(job, i, 'error', errnoDetail(errno));
  }

  private onReply(entry: PooledSocket, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (msg.length < 12) return void this.mismatched++;
    const id = msg.readUInt16BE(0);
    const job = this.table.get(id, entry);
    if (!job) return void this.mismatched++;
    const i = this.table.upstreamOf(id);
    const u = job.order[i]!;
    if (u.port !== rinfo.port || u.host !== rinfo.address || !acceptable(msg, job.query, job.qEnd)) return void this.mismatched++;
    this.udpReply(job, id, i, msg);
  }

  private udpReply(job: Job, id: number, i: number, reply: Buffer): void {
    const outcome = classify(reply);
    if (outcome === 'answer') return this.finish(job, reply, i);
    this.table.release(job, id);
    this.failedFor(job, i, outcome, undefined, outcome === 'refused' && this.passRefused ? Buffer.from(reply) : undefined);
  }

  private askUdp(job: Job, i: number): void {
    const u = job.order[i]!;
    let entry: PooledSocket;
    try {
      entry = this.sockets.udpFor(u, job.netns);
    } catch (error) {
      return this.failedFor(job, i, 'error', (error as Error).message);
    }
    if (this.table.count >= MAX_ATTEMPTS) {
      // The ID space is crowded: do not add attempts; the ones out there may still answer.
      if (job.live === 0) this.finish(job, null, -1);
      return;
    }
    const id = this.table.add(job, i, entry);
    if (!this.sweepTimer) this.armSweep();
    const query = job.query;
    query.writeUInt16BE(id, 0); // finish() restores the client's ID
    try {
      this.sockets.send(entry, u, query, (err) => {
        if (!this.table.holds(job, id)) return;
        this.table.release(job, id);
        this.failedFor(job, i, 'error', err.message);
      });
    } catch (error) {
      this.table.release(job, id);
      this.failedFor(job, i, 'error', (error as Error).message);
    }
  }

  private armSweep(): void {
    this.sweepTimer = setTimeout(() => this.sweep(), this.sweepEveryMs);
    this.sweepTimer.unref();
  }

  /** Every UDP job whose newest attempt is overdue is asked on (or ended at its deadline); keep sweeping while any are out. */
  private sweep(): void {
    this.sweepTimer = undefined;
    if (this.closed) return;
    const now = Date.now();
    // overdue() asks again and moves `at` on, so a job seen again at another of its IDs is left alone.
    this.table.forEach((job) => {
      if (job.at <= now) this.overdue(job);
    });
    if (this.table.count > 0) this.armSweep();
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

  /** One TCP connection per attempt, from the host or the container's netns. */
  private askTcp(job: Job, i: number): void {
    const tcp = job.tcp!;
    let sock: net.Socket | undefined; // still undefined if the connect fails at once (fail is called first)
    sock = this.sockets.tcpExchange(job.order[i]!, job.netns, job.query, job.qEnd, {
      answer: (msg) => this.finish(job, msg, i),
      fail: (outcome, detail, reply) => {
        if (sock) tcp.conns = tcp.conns.filter((c) => c !== sock);
        this.failedFor(job, i, outcome, detail, reply);
      },
      mismatch: () => void this.mismatched++,
    });
    if (sock) tcp.conns.push(sock);
  }
}

function deadKey(u: UpstreamAddress, netns: string | undefined): string {
  return netns === undefined ? u.key : `${u.key}@${netns}`;
}
