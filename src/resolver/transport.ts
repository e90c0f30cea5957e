// UDP and TCP serving on sockets handed to us: framing, limits and timeouts; every query goes to one callback.
import type dgram from 'node:dgram';
import type net from 'node:net';
import type { Transport } from './handler.js';
import { dgramFd, dgramHandle, isNativeView, nativeUdp, sockaddrIp, type NativeUdp } from './native-udp.js';

/**
 * Called once per query; must call `respond` exactly once (null = send nothing). `source` is the sender's IP
 * when the serving was asked for it (a listener shared by many clients), else ''.
 */
export type QueryCallback = (msg: Buffer, transport: Transport, respond: (reply: Buffer | null) => void, source: string) => void;
export type TransportError = (kind: string, error: unknown) => void;

export interface Serving {
  close(): Promise<void>;
  tcpConnections(): number;
  /** 'native': batched through the udpbatch addon; 'dgram': node:dgram, one datagram per callback. */
  udpPath: 'native' | 'dgram';
}

interface UdpServing {
  path: 'native' | 'dgram';
  close(): Promise<void>;
}

function closeDgram(udp: dgram.Socket): Promise<void> {
  return new Promise<void>((resolve) => {
    try {
      udp.close(() => resolve());
    } catch {
      resolve(); // already closed
    }
  });
}

/**
 * UDP through the udpbatch addon: the socket's fd is duplicated into the addon and the dgram socket
 * closed; each wake-up reads up to 32 datagrams, the handler runs for each in one JS call, and the
 * replies given synchronously leave in one sendmmsg. A query answered later (forwarded) keeps a copy of
 * its sender's address and is sent on its own. Null when the addon is not there.
 */
function serveUdpNative(udp: dgram.Socket, onQuery: QueryCallback, onError: TransportError, withSource: boolean): UdpServing | null {
  const n: NativeUdp | null = nativeUdp();
  if (!n) return null;
  const fd = dgramFd(udp);
  if (fd < 0) return null;
  const { addon, rx, meta, addrs, rxSlot, addrSlot } = n;
  let handle: object | undefined;
  let closed = false;
  let slot = -1; // the datagram being handled, while its handler runs synchronously
  const onBatch = (count: number): void => {
    for (let i = 0; i < count; i++) {
      const len = meta[2 * i]!;
      if (len < 0) {
        onError('udp-oversize', new Error(`datagram longer than ${rxSlot} bytes dropped`));
        continue;
      }
      const msg = rx.subarray(i * rxSlot, i * rxSlot + len);
      slot = i;
      let answered = false;
      let addr: Buffer | undefined;
      const respond = (reply: Buffer | null): void => {
        if (answered || !reply || closed) return;
        answered = true;
        try {
          if (slot === i && !addr) addon.reply(handle!, i, reply, reply.length);
          else if (addr) addon.sendTo(handle!, reply, reply.length, addr);
        } catch (error) {
          onError('udp-send', error);
        }
      };
      try {
        onQuery(msg, 'udp', respond, withSource ? sockaddrIp(addrs, i * addrSlot, meta[2 * i + 1]!) : '');
      } catch (error) {
        onError('handler', error);
      }
      // Not answered yet (forwarded): keep the sender's address for the reply.
      if (!answered) addr = Buffer.copyBytesFrom(addrs, i * addrSlot, meta[2 * i + 1]!);
      slot = -1;
    }
  };
  try {
    handle = addon.open(fd, onBatch);
  } catch (error) {
    onError('udp-socket', error);
    return null;
  }
  void closeDgram(udp); // the addon holds its own duplicate of the socket
  return {
    path: 'native',
    async close() {
      if (closed) return;
      closed = true;
      addon.close(handle!);
    },
  };
}

function serveUdpDgram(udp: dgram.Socket, onQuery: QueryCallback, onError: TransportError, withSource: boolean): UdpServing {
  skipAddressLookup(udp);
  try {
    // Room for a burst of queries (the addon asks 1 MiB); dgram can only ask up to the host's rmem_max.
    udp.setRecvBufferSize(1 << 20);
  } catch {
    /* keep the default */
  }
  const onMessage = (msg: Buffer, rinfo: dgram.RemoteInfo): void => {
    const respond = (reply: Buffer | null): void => {
      if (!reply) return;
      try {
        // No send callback: with one, Node queues a tick per datagram (a third of our rate on a hot
        // socket). A reply the kernel refuses is then lost like any UDP datagram; the client retries.
        // dgram may queue the buffer; a forwarded reply can be a view the addon reuses (see upstream.ts).
        udp.send(isNativeView(reply) ? Buffer.from(reply) : reply, rinfo.port, rinfo.address);
      } catch (error) {
        onError('udp-send', error); // socket closed by detach while a forward was in flight
      }
    };
    try {
      onQuery(msg, 'udp', respond, withSource ? plainIp(rinfo.address) : '');
    } catch (error) {
      onError('handler', error);
    }
  };
  const onUdpError = (error: Error): void => onError('udp-socket', error);
  udp.on('message', onMessage);
  udp.on('error', onUdpError);
  return {
    path: 'dgram',
    async close() {
      udp.off('message', onMessage);
      await closeDgram(udp);
      udp.off('error', onUdpError);
    },
  };
}

export const TCP_IDLE_MS = 10_000;
export const MAX_TCP_CONNECTIONS = 64;
const MAX_PENDING_PER_CONNECTION = 64; // stop reading a connection that has this many queries outstanding
const MAX_WRITE_BACKLOG = 1 << 20; // a client that does not read its answers is cut off
const EMPTY: Buffer = Buffer.alloc(0);

export interface ServeOptions {
  idleMs?: number;
  maxConnections?: number;
  /** false: node:dgram even when the udpbatch addon is there (tests cover both paths). */
  native?: boolean;
  /** Tell the callback each query's sender IP (a listener many clients share tells them apart by it). */
  source?: boolean;
  onError: TransportError;
  /** A TCP connection was accepted (metrics). */
  onConnection?: () => void;
}

/** An IPv4 client seen through a dual-stack socket (`::ffff:10.0.0.2`) as plain IPv4. */
function plainIp(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

/**
 * Replies go to the sender's address, always an IP literal, yet dgram's send() resolves it through
 * dns.lookup first (an isIP check and a process.nextTick per datagram). A socket we create takes a
 * `lookup` option; a handle received over IPC does not, so swap in a synchronous pass-through on its
 * handle. Measured here (echo server, server and dnsperf on their own cores): +20-30 % datagrams/s.
 * If Node's internals ever change shape, this does nothing and send() keeps its own lookup.
 */
export function skipAddressLookup(udp: dgram.Socket): void {
  const handle = dgramHandle(udp);
  if (!handle || typeof handle.lookup !== 'function' || handle.lookup.length !== 2) return;
  handle.lookup = passThroughLookup;
}

function passThroughLookup(address: string, callback: (err: Error | null, ip: string) => void): void {
  callback(null, address);
}

export function serve(udp: dgram.Socket, tcp: net.Server, onQuery: QueryCallback, opts: ServeOptions): Serving {
  const idleMs = opts.idleMs ?? TCP_IDLE_MS;
  const maxConnections = opts.maxConnections ?? MAX_TCP_CONNECTIONS;
  const onError = opts.onError;
  const conns = new Set<net.Socket>();

  const withSource = opts.source === true;
  const udpServing = (opts.native !== false ? serveUdpNative(udp, onQuery, onError, withSource) : null) ?? serveUdpDgram(udp, onQuery, onError, withSource);

  const onConnection = (sock: net.Socket): void => {
    if (conns.size >= maxConnections) {
      onError('tcp-limit', new Error(`more than ${maxConnections} TCP connections`));
      sock.destroy();
      return;
    }
    conns.add(sock);
    opts.onConnection?.();
    const source = withSource ? plainIp(sock.remoteAddress ?? '') : '';
    let buf = EMPTY;
    let pending = 0;
    let closeWhenDone = false;
    sock.on('error', () => {
      /* resets and timeouts from clients are normal */
    });
    // The idle timer restarts on every byte, so a client trickling one byte at a time would never hit
    // it: a message that has begun must also be complete within idleMs.
    let partialTimer: NodeJS.Timeout | undefined;
    sock.on('close', () => {
      conns.delete(sock);
      clearTimeout(partialTimer);
    });
    const finishIdle = (): void => {
      sock.end();
      // A client that never closes its side is dropped soon after.
      setTimeout(() => sock.destroy(), 2000).unref();
    };
    sock.setTimeout(idleMs, () => {
      if (pending > 0) closeWhenDone = true;
      else finishIdle();
    });
    const respondFor = (): ((reply: Buffer | null) => void) => {
      let answered = false;
      return (reply) => {
        if (answered) return;
        answered = true;
        pending--;
        if (reply && !sock.destroyed && sock.writable) {
          const prefix = Buffer.allocUnsafe(2);
          prefix.writeUInt16BE(reply.length, 0);
          sock.cork();
          sock.write(prefix);
          sock.write(reply);
          sock.uncork();
          if (sock.writableLength > MAX_WRITE_BACKLOG) sock.destroy();
        }
        if (sock.isPaused() && pending < MAX_PENDING_PER_CONNECTION / 2 && !sock.destroyed) sock.resume();
        if (closeWhenDone && pending === 0) finishIdle();
      };
    };
    sock.on('data', (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      let off = 0;
      while (buf.length - off >= 2) {
        const len = buf.readUInt16BE(off);
        if (len === 0) {
          // A zero length can never be a DNS message: the stream is out of sync, give up on it.
          buf = EMPTY;
          sock.destroy();
          return;
        }
        if (buf.length - off - 2 < len) break;
        const msg = buf.subarray(off + 2, off + 2 + len);
        off += 2 + len;
        pending++;
        const respond = respondFor();
        try {
          onQuery(msg, 'tcp', respond, source);
        } catch (error) {
          onError('handler', error);
          respond(null);
        }
        if (sock.destroyed) return;
      }
      buf = off >= buf.length ? EMPTY : buf.subarray(off);
      if (buf.length === 0) {
        clearTimeout(partialTimer);
        partialTimer = undefined;
      } else if (off > 0 || !partialTimer) {
        clearTimeout(partialTimer);
        partialTimer = setTimeout(() => sock.destroy(), idleMs);
      }
      if (pending >= MAX_PENDING_PER_CONNECTION) sock.pause();
    });
  };
  const onTcpError = (error: Error): void => onError('tcp-socket', error);

  tcp.on('connection', onConnection);
  tcp.on('error', onTcpError);

  return {
    tcpConnections: () => conns.size,
    udpPath: udpServing.path,
    async close() {
      tcp.off('connection', onConnection);
      for (const c of conns) c.destroy();
      conns.clear();
      await Promise.all([
        udpServing.close(),
        new Promise<void>((resolve) => {
          if (!tcp.listening) return resolve();
          tcp.close(() => resolve());
        }),
      ]);
      tcp.off('error', onTcpError);
    },
  };
}
