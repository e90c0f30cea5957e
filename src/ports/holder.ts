// Host ports held while they are published. The daemon keeps a socket bound on each (host IP, port, proto):
// no host process can take the port meanwhile, and a port a host process already listens on is refused
// with the bind error, as Docker's docker-proxy does. The sockets also serve as the userland proxy for
// what the kernel path cannot carry (IPv6 loopback, IPv6 clients of an IPv4-only container): anything the
// nftables DNAT rules catch never reaches them.
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import { DnsnetError } from '../errors.js';
import { ipVersion } from '../ip/index.js';
import { portKey, type PortBindingRecord, type Proto } from './spec.js';

/** A published port as it is now (NetworkSettings.Ports' entry): `hostIp` is 0.0.0.0, :: or one address. */
export interface PublishedPort {
  proto: Proto;
  containerPort: number;
  hostIp: string;
  hostPort: number;
}

/** Where the proxy sends what reaches a held socket. */
export interface ProxyTarget {
  ipv4: string;
  ipv6?: string | undefined;
}

interface Held {
  port: PublishedPort;
  close(): void;
}

const UDP_IDLE_MS = 90_000; // docker-proxy's UDP flow timeout
const EPHEMERAL_TRIES = 20;

function family(ip: string): 4 | 6 {
  return ipVersion(ip) === 6 ? 6 : 4;
}

/** `IP:PORT`, an IPv6 address in brackets (as Docker's messages print them). */
function at(ip: string, port: number | string): string {
  return family(ip) === 6 ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** Two host IPs collide when equal, or when one is the wildcard of the other's family. */
function overlaps(a: string, b: string): boolean {
  if (family(a) !== family(b)) return false;
  return a === b || a === '0.0.0.0' || a === '::' || b === '0.0.0.0' || b === '::';
}

function portError(p: { proto: string; hostIp: string; hostPort: number | string }, error: NodeJS.ErrnoException): DnsnetError {
  const where = `${p.proto}${family(p.hostIp)} ${at(p.hostIp, p.hostPort)}`;
  const why = error.code === 'EADDRINUSE' ? 'address already in use' : error.code === 'EADDRNOTAVAIL' ? 'cannot assign requested address' : error.message;
  return new DnsnetError('conflict', `Error starting userland proxy: listen ${where}: bind: ${why}`);
}

export class PortHolder {
  private readonly held = new Map<string, Held[]>();

  constructor(
    private readonly log: (line: string) => void,
    /** Whether the host has IPv6: a binding on every address then also holds [::]. */
    private readonly ipv6: boolean,
  ) {}

  /**
   * Hold host ports for `bindings` of container `id`, or nothing at all: on any failure what was bound is
   * let go and the error says which. `others` are the ports other containers hold (Docker's "port is
   * already allocated"); `target` is where the proxy sends.
   */
  async reserve(id: string, bindings: PortBindingRecord[], target: () => ProxyTarget, others: PublishedPort[]): Promise<PublishedPort[]> {
    const mine: Held[] = [];
    try {
      for (const b of bindings) {
        const ips = b.hostIp !== '' ? [b.hostIp] : ['0.0.0.0', ...(this.ipv6 ? ['::'] : [])];
        mine.push(...(await this.bindOne(b, ips, target, [...others, ...mine.map((h) => h.port)])));
      }
    } catch (error) {
      for (const h of mine) h.close();
      throw error;
    }
    this.held.set(id, [...(this.held.get(id) ?? []), ...mine]);
    return mine.map((h) => h.port);
  }

  /** After a daemon restart: hold again what a running container publishes. Returns what could not be held. */
  async readopt(id: string, ports: PublishedPort[], target: () => ProxyTarget): Promise<string[]> {
    const failed: string[] = [];
    const mine: Held[] = [];
    for (const p of ports) {
      try {
        mine.push(await bindSocket(p, target, this.log));
      } catch (error) {
        failed.push(`${p.hostIp}:${p.hostPort}/${p.proto}: ${(error as Error).message}`);
      }
    }
    this.held.set(id, mine);
    return failed;
  }

  release(id: string): void {
    for (const h of this.held.get(id) ?? []) h.close();
    this.held.delete(id);
  }

  close(): void {
    for (const id of [...this.held.keys()]) this.release(id);
  }

  private async bindOne(b: PortBindingRecord, ips: string[], target: () => ProxyTarget, taken: PublishedPort[]): Promise<Held[]> {
    const clash = (ip: string, port: number) => taken.some((t) => t.proto === b.proto && t.hostPort === port && overlaps(t.hostIp, ip));
    const allocated = (ip: string, port: number | string) => new DnsnetError('conflict', `Bind for ${at(ip, port)} failed: port is already allocated`);
    const bindAll = async (port: number): Promise<Held[]> => {
      const out: Held[] = [];
      try {
        for (const ip of ips) {
          if (clash(ip, port)) throw allocated(ip, port);
          out.push(await bindSocket({ proto: b.proto, containerPort: b.containerPort, hostIp: ip, hostPort: port }, target, this.log));
        }
        return out;
      } catch (error) {
        for (const h of out) h.close();
        throw error;
      }
    };
    if (b.hostPort === '') {
      // Ephemeral: the kernel picks a port for the first address (from ip_local_port_range); the others follow.
      let last: unknown;
      for (let i = 0; i < EPHEMERAL_TRIES; i++) {
        const first = ips[0] ?? '0.0.0.0';
        const port = b.proto === 'sctp' ? pickEphemeral((p) => clash(first, p)) : await kernelPort(b.proto, first);
        try {
          return await bindAll(port);
        } catch (error) {
          last = error;
        }
      }
      throw last instanceof Error ? last : new DnsnetError('conflict', `no free ephemeral port for ${portKey(b.containerPort, b.proto)}`);
    }
    const [from, to] = b.hostPort.split('-').map(Number) as [number, number | undefined];
    if (to === undefined) return bindAll(from);
    for (let port = from; port <= to; port++) {
      try {
        return await bindAll(port);
      } catch (error) {
        if (!/already (allocated|in use)/.test((error as Error).message)) throw error; // a bad address is no reason to try the next port
      }
    }
    throw allocated(ips[0] ?? '0.0.0.0', b.hostPort);
  }
}

/** A port the kernel chooses for `ip` (bound and let go at once; bindAll then holds it). */
async function kernelPort(proto: 'tcp' | 'udp', ip: string): Promise<number> {
  if (proto === 'tcp') {
    const s = net.createServer();
    await new Promise<void>((resolve, reject) => s.once('error', reject).listen({ host: ip, port: 0, ipv6Only: family(ip) === 6, exclusive: true }, resolve));
    const port = (s.address() as net.AddressInfo).port;
    await new Promise((r) => s.close(r));
    return port;
  }
  const u = dgram.createSocket({ type: family(ip) === 6 ? 'udp6' : 'udp4', ipv6Only: family(ip) === 6 });
  await new Promise<void>((resolve, reject) => u.once('error', reject).bind({ port: 0, address: ip, exclusive: true }, resolve));
  const port = u.address().port;
  u.close();
  return port;
}

/** SCTP (Node has no SCTP socket): a port of the kernel's ephemeral range that no container holds. */
function pickEphemeral(clash: (port: number) => boolean): number {
  let lo = 32768;
  let hi = 60999;
  try {
    const [a, b] = fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (a && b && a <= b) [lo, hi] = [a, b];
  } catch {
    // the kernel's default range
  }
  for (let i = 0; i < 1000; i++) {
    const port = lo + Math.floor(Math.random() * (hi - lo + 1));
    if (!clash(port)) return port;
  }
  throw new DnsnetError('conflict', 'no free ephemeral port for sctp');
}

/** Hold one (host IP, port, proto) with a socket that proxies to the container. SCTP: held by record only. */
async function bindSocket(port: PublishedPort, target: () => ProxyTarget, log: (line: string) => void): Promise<Held> {
  const v6 = family(port.hostIp) === 6;
  const to = () => {
    const t = target();
    return v6 && t.ipv6 ? t.ipv6 : t.ipv4;
  };
  try {
    if (port.proto === 'tcp') return { port, close: await tcpProxy(port, to, log) };
    if (port.proto === 'udp') return { port, close: await udpProxy(port, to) };
    return { port, close: () => undefined };
  } catch (error) {
    throw portError(port, error as NodeJS.ErrnoException);
  }
}

async function tcpProxy(p: PublishedPort, to: () => string, log: (line: string) => void): Promise<() => void> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect({ host: to(), port: p.containerPort });
    sockets.add(client).add(upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  server.on('error', (e) => log(`[ports] proxy ${p.hostIp}:${p.hostPort}/tcp: ${e.message}`));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: p.hostIp, port: p.hostPort, ipv6Only: family(p.hostIp) === 6, exclusive: true, backlog: 511 }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return () => {
    server.close();
    for (const s of sockets) s.destroy();
  };
}

async function udpProxy(p: PublishedPort, to: () => string): Promise<() => void> {
  const v6 = family(p.hostIp) === 6;
  const front = dgram.createSocket({ type: v6 ? 'udp6' : 'udp4', ipv6Only: v6 });
  const flows = new Map<string, { sock: dgram.Socket; timer: NodeJS.Timeout }>();
  await new Promise<void>((resolve, reject) => {
    front.once('error', reject);
    front.bind({ port: p.hostPort, address: p.hostIp, exclusive: true }, () => {
      front.off('error', reject);
      resolve();
    });
  });
  front.on('error', () => undefined);
  front.on('message', (msg, rinfo) => {
    const key = `${rinfo.address}|${rinfo.port}`;
    let flow = flows.get(key);
    if (!flow) {
      const dest = to();
      const sock = dgram.createSocket(family(dest) === 6 ? 'udp6' : 'udp4');
      sock.on('error', () => undefined);
      sock.on('message', (reply) => {
        front.send(reply, rinfo.port, rinfo.address);
        const f = flows.get(key);
        f?.timer.refresh();
      });
      sock.connect(p.containerPort, dest);
      const timer = setTimeout(() => {
        sock.close();
        flows.delete(key);
      }, UDP_IDLE_MS).unref();
      flow = { sock, timer };
      flows.set(key, flow);
      sock.once('connect', () => sock.send(msg));
      return;
    }
    flow.timer.refresh();
    try {
      flow.sock.send(msg);
    } catch {
      // not connected yet: this datagram is lost, as UDP allows
    }
  });
  return () => {
    front.close();
    for (const f of flows.values()) {
      clearTimeout(f.timer);
      f.sock.close();
    }
  };
}
