// Forwarding from the host netns: tries upstreams in order (at most 3), remembers dead ones, matches replies strictly.
import dgram from 'node:dgram';
import net from 'node:net';
import { randomInt } from 'node:crypto';
import type { Transport } from './handler.js';

export const DEFAULT_UPSTREAM_TIMEOUT_MS = 1500;
/** Whole forwarding budget: well inside glibc's 5 s per try, so a client always gets our SERVFAIL first. */
export const FORWARD_BUDGET_MS = 3500;
export const DEAD_FOR_MS = 30_000;
export const MAX_TRIES = 3;
const UDP_POOL = 8; // sockets per family, each on a kernel-chosen random port

export interface UpstreamAddress {
  key: string; // as configured
  host: string;
  port: number;
  family: 4 | 6;
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
  return { key: s, host, port, family: family as 4 | 6 };
}

export type AttemptOutcome = 'answer' | 'timeout' | 'servfail' | 'refused' | 'error';

export interface ForwardResult {
  /** The upstream's reply with the client's ID, or null when every upstream failed. */
  reply: Buffer | null;
  /** Failed attempts, by kind, in order. */
  failures: { server: string; outcome: AttemptOutcome; detail?: string }[];
}

interface Pending {
  host: string;
  port: number;
  question: Buffer; // the query's question section bytes
  resolve: (reply: Buffer | null, outcome: AttemptOutcome, detail?: string) => void;
}

interface PooledSocket {
  socket: dgram.Socket;
  pending: Map<number, Pending>;
}

/** Compare the first question of `reply` with `question` (raw bytes), ASCII case-insensitively. */
export function sameQuestion(reply: Buffer, question: Buffer): boolean {
  if (reply.length < 12 + question.length) return false;
  for (let i = 0; i < question.length; i++) {
    let a = reply[12 + i]!;
    let b = question[i]!;
    if (a >= 0x41 && a <= 0x5a) a |= 0x20;
    if (b >= 0x41 && b <= 0x5a) b |= 0x20;
    if (a !== b) return false;
  }
  return true;
}

function acceptable(reply: Buffer, question: Buffer): boolean {
  if (reply.length < 12 || !(reply[2]! & 0x80)) return false;
  const qd = reply.readUInt16BE(4);
  if (qd === 1) return sameQuestion(reply, question);
  // Some servers drop the question from FORMERR / NOTIMP: ID, address and port still had to match.
  const rcode = reply[3]! & 0xf;
  return qd === 0 && (rcode === 1 || rcode === 4);
}

export class UpstreamForwarder {
  private readonly timeoutMs: number;
  private readonly budgetMs: number;
  private readonly dead = new Map<string, number>(); // key -> dead until (ms)
  private readonly pools: Record<4 | 6, PooledSocket[]> = { 4: [], 6: [] };
  private next = 0;
  private closed = false;
  private readonly tcpConns = new Set<net.Socket>();
  /** Replies that did not match an outstanding query (wrong ID, question, source), counted. */
  mismatched = 0;

  constructor(opts: { timeoutMs?: number; budgetMs?: number } = {}) {
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_UPSTREAM_TIMEOUT_MS;
    this.budgetMs = opts.budgetMs ?? Math.min(FORWARD_BUDGET_MS, this.timeoutMs * MAX_TRIES);
  }

  /** Upstreams in the order they will be tried: live ones in configured order, then dead ones; at most 3. */
  order(servers: string[]): UpstreamAddress[] {
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
  async forward(query: Buffer, qEnd: number, servers: string[], transport: Transport): Promise<ForwardResult> {
    const failures: ForwardResult['failures'] = [];
    const clientId = query.readUInt16BE(0);
    const question = query.subarray(12, qEnd);
    const deadline = Date.now() + this.budgetMs;
    for (const u of this.order(servers)) {
      const remaining = deadline - Date.now();
      if (remaining <= 0 || this.closed) break;
      const timeout = Math.min(this.timeoutMs, remaining);
      const out = await (transport === 'tcp' ? this.askTcp(u, query, question, timeout) : this.askUdp(u, query, question, timeout));
      if (out.outcome === 'answer' && out.reply) {
        this.dead.delete(u.key);
        const reply = Buffer.from(out.reply);
        reply.writeUInt16BE(clientId, 0);
        return { reply, failures };
      }
      if (out.outcome === 'timeout' || out.outcome === 'error') this.dead.set(u.key, Date.now() + DEAD_FOR_MS);
      failures.push({ server: u.key, outcome: out.outcome, ...(out.detail ? { detail: out.detail } : {}) });
    }
    return { reply: null, failures };
  }

  /** Servers currently remembered as dead. */
  deadServers(): string[] {
    const now = Date.now();
    return [...this.dead].filter(([, until]) => until > now).map(([k]) => k);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const c of this.tcpConns) c.destroy();
    const all = [...this.pools[4], ...this.pools[6]];
    this.pools[4] = [];
    this.pools[6] = [];
    for (const p of all) {
      for (const pend of p.pending.values()) pend.resolve(null, 'error', 'closed');
      p.pending.clear();
    }
    await Promise.all(all.map((p) => new Promise<void>((resolve) => p.socket.close(() => resolve()))));
  }

  private socketFor(family: 4 | 6): PooledSocket {
    const pool = this.pools[family];
    if (pool.length < UDP_POOL) {
      const socket = dgram.createSocket(family === 4 ? 'udp4' : 'udp6');
      const entry: PooledSocket = { socket, pending: new Map() };
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

  private onReply(entry: PooledSocket, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (msg.length < 12) return void this.mismatched++;
    const p = entry.pending.get(msg.readUInt16BE(0));
    if (!p || p.port !== rinfo.port || p.host !== rinfo.address || !acceptable(msg, p.question)) return void this.mismatched++;
    p.resolve(msg, classify(msg));
  }

  private askUdp(u: UpstreamAddress, query: Buffer, question: Buffer, timeoutMs: number): Promise<{ reply: Buffer | null; outcome: AttemptOutcome; detail?: string }> {
    return new Promise((resolve) => {
      let entry: PooledSocket;
      try {
        entry = this.socketFor(u.family);
      } catch (error) {
        resolve({ reply: null, outcome: 'error', detail: (error as Error).message });
        return;
      }
      let id = randomInt(0, 65536);
      for (let i = 0; entry.pending.has(id) && i < 100; i++) id = randomInt(0, 65536);
      if (entry.pending.has(id)) return resolve({ reply: null, outcome: 'error', detail: 'no free query id' });
      const out = Buffer.from(query);
      out.writeUInt16BE(id, 0);
      let done = false;
      const finish = (reply: Buffer | null, outcome: AttemptOutcome, detail?: string): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        entry.pending.delete(id);
        resolve({ reply, outcome, ...(detail ? { detail } : {}) });
      };
      const timer = setTimeout(() => finish(null, 'timeout'), timeoutMs);
      entry.pending.set(id, { host: u.host, port: u.port, question, resolve: finish });
      try {
        entry.socket.send(out, u.port, u.host, (err) => {
          if (err) finish(null, 'error', err.message);
        });
      } catch (error) {
        finish(null, 'error', (error as Error).message);
      }
    });
  }

  private askTcp(u: UpstreamAddress, query: Buffer, question: Buffer, timeoutMs: number): Promise<{ reply: Buffer | null; outcome: AttemptOutcome; detail?: string }> {
    return new Promise((resolve) => {
      const id = randomInt(0, 65536);
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
          if (len >= 12 && msg.readUInt16BE(0) === id && acceptable(msg, question)) return finish(msg, classify(msg));
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
