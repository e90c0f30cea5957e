// Loads native/udpbatch.c (built to dist/native/udpbatch.node by scripts/build-native.mjs) and wraps it:
// batched UDP receive/send for the resolver. Without it (not built, or DNSNET_NATIVE_UDP=0) the
// resolver serves UDP through node:dgram, with the same behaviour and a lower rate.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type dgram from 'node:dgram';
import { formatAddress, parseAddress } from '../ip/index.js';

export interface UdpBatchAddon {
  init(rx: Buffer, meta: Buffer, addrs: Buffer, big: Buffer): void;
  /** `upstream`: datagrams land in the big area, and ICMP errors come as slots of length -(errMark + errno). */
  open(fd: number, onBatch: (count: number) => void, upstream?: boolean): object;
  /** A UDP socket with IP_RECVERR, bound to a random port, made in the netns at `netns` (default: ours). */
  socket(family: 4 | 6, netns?: string): number;
  /** A TCP socket made in `netns` (default: ours), its connect to `addr` begun; throws with `code` on an immediate failure. */
  tcpConnect(addr: Buffer, netns?: string): number;
  closeFd(fd: number): void;
  reply(handle: object, slot: number, buf: Buffer, len: number): void;
  sendTo(handle: object, buf: Buffer, len: number, addr: Buffer): void;
  close(handle: object): void;
  ref(handle: object, on: boolean): void;
  localPort(handle: object): number;
  stats(): { received: number; sent: number; sendFailed: number; oversize: number; batches: number };
  constants: { batch: number; rxSlot: number; addrSlot: number; txSlot: number; bigSlot: number; errMark: number };
}

/** The addon plus the shared areas it fills: one receive batch at a time, read synchronously in the callback. */
export interface NativeUdp {
  addon: UdpBatchAddon;
  /** Datagram `i` of a batch is rx[i * rxSlot, i * rxSlot + len(i)). */
  rx: Buffer;
  /** Per slot: [length or -1 when longer than rxSlot, sender address length]. */
  meta: Int32Array;
  /** Sender address of slot `i` (a struct sockaddr) at addrs[i * addrSlot]. */
  addrs: Buffer;
  /** Upstream sockets' datagrams: slot `i` at big[i * bigSlot] (a reply may be up to 64 KiB). */
  big: Buffer;
  batch: number;
  rxSlot: number;
  addrSlot: number;
  bigSlot: number;
  /** A slot length of -(errMark + errno) reports an ICMP error for the datagram whose payload the slot holds. */
  errMark: number;
}

let loaded: NativeUdp | null | undefined;
let whyNot = '';

function packageRoot(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'native', 'udpbatch.c'))) return dir;
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return undefined;
}

/** The addon, or null (see nativeUdpUnavailable()). Loaded once per process. */
export function nativeUdp(): NativeUdp | null {
  if (loaded !== undefined) return loaded;
  loaded = null;
  if (process.env.DNSNET_NATIVE_UDP === '0') {
    whyNot = 'disabled by DNSNET_NATIVE_UDP=0';
    return null;
  }
  const root = packageRoot();
  const file = root ? join(root, 'dist', 'native', 'udpbatch.node') : undefined;
  if (!file || !existsSync(file)) {
    whyNot = `${file ?? 'dist/native/udpbatch.node'} not built (npm run build)`;
    return null;
  }
  try {
    const addon = createRequire(import.meta.url)(file) as UdpBatchAddon;
    const c = addon.constants;
    const rx = Buffer.alloc(c.batch * c.rxSlot);
    const metaBuf = Buffer.alloc(c.batch * 8);
    const addrs = Buffer.alloc(c.batch * c.addrSlot);
    // 2 MiB of address space; the kernel writes only what arrives, so pages are touched as replies need them.
    const big = Buffer.alloc(c.batch * c.bigSlot);
    addon.init(rx, metaBuf, addrs, big);
    const meta = new Int32Array(metaBuf.buffer, metaBuf.byteOffset, c.batch * 2);
    loaded = { addon, rx, meta, addrs, big, batch: c.batch, rxSlot: c.rxSlot, addrSlot: c.addrSlot, bigSlot: c.bigSlot, errMark: c.errMark };
  } catch (error) {
    whyNot = `load ${file}: ${error instanceof Error ? error.message : String(error)}`;
  }
  return loaded;
}

/** True for a view into the addon's shared receive area (valid only until the current callback returns). */
export function isNativeView(buf: Buffer): boolean {
  return loaded !== undefined && loaded !== null && (buf.buffer === loaded.rx.buffer || buf.buffer === loaded.big.buffer);
}

/** Why nativeUdp() is null ('' when it is not). */
export function nativeUdpUnavailable(): string {
  nativeUdp();
  return whyNot;
}

/**
 * The libuv handle wrap under a dgram socket (bound, or received over IPC), from Node's internal state;
 * undefined if Node's internals ever change shape (callers then keep dgram's own behaviour).
 */
export function dgramHandle(udp: dgram.Socket): { fd?: unknown; lookup?: unknown } | undefined {
  try {
    const sym = Object.getOwnPropertySymbols(udp).find((s) => s.description === 'state symbol');
    return sym ? (udp as unknown as Record<symbol, { handle?: { fd?: unknown; lookup?: unknown } } | undefined>)[sym]?.handle : undefined;
  } catch {
    return undefined;
  }
}

/** The file descriptor under a dgram socket, or -1. */
export function dgramFd(udp: dgram.Socket): number {
  const fd = dgramHandle(udp)?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : -1;
}

const AF_INET = 2;
const AF_INET6 = 10;

/** A struct sockaddr_in / sockaddr_in6 (Linux layout, host-order family) for an IP literal; undefined for a scoped v6 address. */
export function sockaddr(host: string, port: number, family: 4 | 6): Buffer | undefined {
  if (host.includes('%')) return undefined;
  const { value } = parseAddress(host);
  const b = Buffer.alloc(family === 4 ? 16 : 28);
  b.writeUInt16LE(family === 4 ? AF_INET : AF_INET6, 0);
  b.writeUInt16BE(port, 2);
  // The address in network order: at offset 4 in a sockaddr_in, 8 in a sockaddr_in6 (after flowinfo).
  const at = family === 4 ? 4 : 8;
  const bytes = family === 4 ? 4 : 16;
  for (let i = 0; i < bytes; i++) b[at + i] = Number((value >> BigInt(8 * (bytes - 1 - i))) & 0xffn);
  return b;
}

/** The IP of a received sender's sockaddr (normalised as ip/'s formatAddress writes it); '' when unreadable. */
export function sockaddrIp(a: Buffer, off: number, len: number): string {
  const family = a.readUInt16LE(off);
  if (family === AF_INET && len >= 8) return `${a[off + 4]}.${a[off + 5]}.${a[off + 6]}.${a[off + 7]}`;
  if (family !== AF_INET6 || len < 24) return '';
  let value = 0n;
  for (let i = 8; i < 24; i++) value = (value << 8n) | BigInt(a[off + i]!);
  return formatAddress({ family: 6, value });
}

/** Same family, port and address (flow info and scope ignored): a received sender vs an upstream's sockaddr. */
export function sameSockaddr(a: Buffer, aOff: number, aLen: number, b: Buffer): boolean {
  if (aLen < 8 || a[aOff] !== b[0] || a[aOff + 1] !== b[1] || a[aOff + 2] !== b[2] || a[aOff + 3] !== b[3]) return false;
  if (b.length === 16) return a[aOff + 4] === b[4] && a[aOff + 5] === b[5] && a[aOff + 6] === b[6] && a[aOff + 7] === b[7];
  if (aLen < 24) return false;
  for (let i = 8; i < 24; i++) if (a[aOff + i] !== b[i]) return false;
  return true;
}
