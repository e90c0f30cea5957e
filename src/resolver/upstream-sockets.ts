// The forwarder's sockets: UDP pools in the host netns and in containers' netns (udpbatch addon), dgram
// sockets connected to one upstream each (the fallback path), and TCP connections from either netns.
import dgram from 'node:dgram';
import net from 'node:net';
import { nativeUdp, type NativeUdp } from './native-udp.js';
import { randomId } from './attempts.js';
import { acceptable, classify, type AttemptOutcome, type UpstreamAddress } from './upstream-message.js';

const UDP_POOL = 8; // host-netns sockets per family, each on a kernel-chosen random port
const NETNS_POOL = 2; // sockets per family in a container's netns (its --dns servers only)
const DGRAM_POOL = 4; // connected dgram sockets per upstream, on the fallback path
const DGRAM_UPSTREAMS = 32; // upstreams with dgram sockets kept; beyond, the oldest pool is closed
const NATIVE_RUN = 32; // consecutive queries per upstream socket on the udpbatch path

export interface PooledSocket {
  /** A dgram socket connected to one upstream (fallback path), or a udpbatch handle (`native`). */
  socket?: dgram.Socket;
  native?: object;
}

/** What the sockets tell the forwarder. */
export interface SocketEvents {
  /** A datagram on an addon socket: `view` is valid during this call only. */
  reply(entry: PooledSocket, view: Buffer, addrs: Buffer, addrOff: number, addrLen: number): void;
  /** The kernel could not deliver a datagram sent on an addon socket (ICMP): its payload (our query) at payload[off]. */
  icmpError(entry: PooledSocket, payload: Buffer, off: number, addrs: Buffer, addrOff: number, addrLen: number, errno: number): void;
  /** A datagram on a dgram socket. */
  dgramReply(entry: PooledSocket, msg: Buffer, rinfo: dgram.RemoteInfo): void;
  /** Nothing sent on these sockets can be answered any more: closed, or (dgram) the upstream's port refused. */
  lost(socks: Set<PooledSocket>, detail: string): void;
  /** A datagram too short to match anything. */
  runt(): void;
}

/** Upstream hosts are IP literals (parseUpstream checks): skip dgram's dns.lookup and its tick per send. */
function literalLookup(host: string, _opts: unknown, callback: (err: Error | null, address: string, family: number) => void): void {
  callback(null, host, net.isIPv6(host) ? 6 : 4);
}

export class UpstreamSockets {
  readonly nat: NativeUdp | null;
  private readonly pools: Record<4 | 6, PooledSocket[]> = { 4: [], 6: [] };
  /** Sockets in containers' netns (their --dns servers), by netns path; native path only. */
  private readonly nsPools = new Map<string, Record<4 | 6, PooledSocket[]>>();
  /** Fallback path (no addon): dgram sockets connected to one upstream each, so a refused port is seen. */
  private readonly dgramPools = new Map<string, PooledSocket[]>();
  private next = 0;

  constructor(
    native: boolean,
    private readonly events: SocketEvents,
  ) {
    this.nat = native ? nativeUdp() : null;
  }

  /** The socket for a UDP attempt to `u`: an addon socket (made in `netns` when given), else a dgram one. */
  udpFor(u: UpstreamAddress, netns: string | undefined): PooledSocket {
    return this.nat !== null && u.sockaddr !== undefined ? this.nativeSocket(u.family, netns) : this.dgramSocket(u);
  }

  /**
   * Send `query` to `u` on `entry`. The addon queues it while a batch is handled (one sendmmsg for all) and
   * copies the bytes; a send it refuses is noticed as a timeout, as a lost datagram would be. dgram reports
   * a send error to `onError` (the bytes must stay as they are until then: the next attempt is 1.5 s away).
   */
  send(entry: PooledSocket, u: UpstreamAddress, query: Buffer, onError: (err: Error) => void): void {
    if (entry.native) return this.nat!.addon.sendTo(entry.native, query, query.length, u.sockaddr!);
    entry.socket!.send(query, (err) => {
      if (err) onError(err);
    });
  }

  /** A TCP connection to `u`: from a container's netns through the addon (its first write waits for the connect), else ours. */
  private tcpConnect(u: UpstreamAddress, netns: string | undefined): net.Socket {
    if (netns !== undefined && this.nat && u.sockaddr) return new net.Socket({ fd: this.nat.addon.tcpConnect(u.sockaddr, netns), readable: true, writable: true });
    return net.connect({ host: u.host, port: u.port });
  }

  /**
   * One TCP attempt: `query` (its question ends at qEnd) framed under a fresh ID on a new connection; the first
   * matching reply goes to `answer` (its own copy) or, SERVFAIL / REFUSED, to `fail`, as does a connection that
   * fails or closes first. Returns the connection, or undefined when it failed at once (`fail` was called).
   */
  tcpExchange(
    u: UpstreamAddress,
    netns: string | undefined,
    query: Buffer,
    qEnd: number,
    on: { answer(reply: Buffer): void; fail(outcome: AttemptOutcome, detail?: string, reply?: Buffer): void; mismatch(): void },
  ): net.Socket | undefined {
    let sock: net.Socket;
    try {
      sock = this.tcpConnect(u, netns);
    } catch (error) {
      const e = error as NodeJS.ErrnoException;
      on.fail('error', e.code === 'ECONNREFUSED' ? 'port unreachable' : e.message);
      return undefined;
    }
    const id = randomId();
    const framed = Buffer.allocUnsafe(query.length + 2);
    framed.writeUInt16BE(query.length, 0);
    query.copy(framed, 2);
    framed.writeUInt16BE(id, 2);
    let buffered: Buffer = Buffer.alloc(0);
    let over = false;
    const end = (outcome: AttemptOutcome, detail?: string, reply?: Buffer): void => {
      if (over) return;
      over = true;
      sock.destroy();
      on.fail(outcome, detail, reply);
    };
    sock.write(framed);
    sock.on('data', (chunk: Buffer) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      while (buffered.length >= 2) {
        const len = buffered.readUInt16BE(0);
        if (buffered.length < 2 + len) return;
        const msg = buffered.subarray(2, 2 + len);
        buffered = buffered.subarray(2 + len);
        if (len >= 12 && msg.readUInt16BE(0) === id && acceptable(msg, query, qEnd)) {
          const outcome = classify(msg);
          if (outcome !== 'answer') return end(outcome, undefined, outcome === 'refused' ? Buffer.from(msg) : undefined);
          over = true;
          return on.answer(Buffer.from(msg)); // the reply may share the connection's buffer
        }
        on.mismatch();
      }
    });
    sock.on('error', (err: NodeJS.ErrnoException) => end('error', err.code === 'ECONNREFUSED' ? 'port unreachable' : err.message));
    sock.on('close', () => end('error', 'connection closed before a reply'));
    return sock;
  }

  /** A container's netns goes away: close the sockets made in it (a socket keeps its netns alive). */
  async dropNetns(netns: string): Promise<void> {
    const pool = this.nsPools.get(netns);
    if (!pool) return;
    this.nsPools.delete(netns);
    const socks = [...pool[4], ...pool[6]];
    this.events.lost(new Set(socks), 'closed');
    await Promise.all(socks.map((p) => this.close(p)));
  }

  async closeAll(): Promise<void> {
    const all = [...this.pools[4], ...this.pools[6], ...[...this.nsPools.values()].flatMap((p) => [...p[4], ...p[6]]), ...[...this.dgramPools.values()].flat()];
    this.pools[4] = [];
    this.pools[6] = [];
    this.nsPools.clear();
    this.dgramPools.clear();
    await Promise.all(all.map((p) => this.close(p)));
  }

  private close(p: PooledSocket): Promise<void> | undefined {
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
      const ev = this.events;
      try {
        entry.native = addon.open(
          fd,
          (count) => {
            for (let i = 0; i < count; i++) {
              const len = meta[2 * i]!;
              if (len <= -errMark) ev.icmpError(entry, big, i * bigSlot, addrs, i * addrSlot, meta[2 * i + 1]!, -len - errMark);
              else if (len < 12) ev.runt();
              else ev.reply(entry, big.subarray(i * bigSlot, i * bigSlot + len), addrs, i * addrSlot, meta[2 * i + 1]!);
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
        this.events.lost(new Set(oldPool), 'closed');
        for (const p of oldPool) void this.close(p);
      }
      this.dgramPools.set(u.key, (pool = []));
    }
    if (pool.length < DGRAM_POOL) {
      const socket = dgram.createSocket({ type: u.family === 4 ? 'udp4' : 'udp6', lookup: literalLookup, recvBufferSize: 1 << 20 });
      const entry: PooledSocket = { socket };
      socket.on('message', (msg, rinfo) => this.events.dgramReply(entry, msg, rinfo));
      // A connected UDP socket reports the ICMP port unreachable of a datagram it sent as ECONNREFUSED.
      socket.on('error', (err: NodeJS.ErrnoException) => this.events.lost(new Set([entry]), err.code === 'ECONNREFUSED' ? 'port unreachable' : err.message));
      socket.connect(u.port, u.host);
      socket.unref();
      pool.push(entry);
      return entry;
    }
    return pool[this.next++ % pool.length]!;
  }
}
