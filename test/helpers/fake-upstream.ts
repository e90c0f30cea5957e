// A fake upstream DNS server on a loopback address (UDP and TCP), answering from a fixed table; tests never leave the machine.
import dgram from 'node:dgram';
import net from 'node:net';
import { randomInt } from 'node:crypto';
import dnsPacket, { type Packet } from 'dns-packet';

export type FakeAnswer = string | string[] | 'NXDOMAIN' | 'SERVFAIL' | 'REFUSED' | 'DROP';

export interface FakeUpstream {
  ip: string;
  port: number;
  /** `ip` when port is 53, else `ip:port`: what to give the resolver. */
  address: string;
  readonly queries: number;
  readonly udpQueries: number;
  readonly tcpQueries: number;
  /** Question names seen, in order, as sent (case kept). */
  readonly names: string[];
  close(): Promise<void>;
}

/** A random 127.53.X.Y address, so parallel tests do not collide. */
export function randomLoopback(): string {
  return `127.53.${randomInt(1, 255)}.${randomInt(1, 255)}`;
}

const RCODES: Record<string, number> = { NXDOMAIN: 3, SERVFAIL: 2, REFUSED: 5 };

/**
 * Serve `answers` (lower-case name -> A address(es) | rcode | DROP) on ip:53 over UDP and TCP.
 * Names not in the table get NXDOMAIN. Only A records are produced; other types get NODATA.
 */
export async function startFakeUpstream(ip: string, answers: Record<string, FakeAnswer>, opts: { port?: number } = {}): Promise<FakeUpstream> {
  const port = opts.port ?? 53;
  const table = new Map(Object.entries(answers).map(([k, v]) => [k.toLowerCase().replace(/\.$/, ''), v]));
  const names: string[] = [];
  let udpQueries = 0;
  let tcpQueries = 0;

  const answer = (msg: Buffer): Buffer | null => {
    let q: Packet;
    try {
      q = dnsPacket.decode(msg);
    } catch {
      return null;
    }
    const question = q.questions?.[0];
    if (!question) return null;
    names.push(question.name);
    const entry = table.get(question.name.toLowerCase()) ?? 'NXDOMAIN';
    if (entry === 'DROP') return null;
    const rcode = typeof entry === 'string' ? RCODES[entry] : undefined;
    const addrs = rcode !== undefined ? [] : Array.isArray(entry) ? entry : [entry];
    return dnsPacket.encode({
      type: 'response',
      id: q.id ?? 0,
      flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | (rcode ?? 0),
      questions: q.questions ?? [],
      answers: question.type === 'A' ? addrs.map((data) => ({ type: 'A' as const, name: question.name, ttl: 30, data })) : [],
    });
  };

  const udp = dgram.createSocket('udp4');
  udp.on('message', (msg, rinfo) => {
    udpQueries++;
    const r = answer(msg);
    if (r) udp.send(r, rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve, reject) => {
    udp.once('error', reject);
    udp.bind(port, ip, () => resolve());
  });

  const conns = new Set<net.Socket>();
  const tcp = net.createServer((sock) => {
    conns.add(sock);
    sock.on('close', () => conns.delete(sock));
    sock.on('error', () => {});
    let buf = Buffer.alloc(0);
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
        buf = buf.subarray(2 + msg.length);
        tcpQueries++;
        const r = answer(msg);
        if (r) {
          const len = Buffer.alloc(2);
          len.writeUInt16BE(r.length);
          sock.write(Buffer.concat([len, r]));
        }
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    tcp.once('error', reject);
    tcp.listen(port, ip, () => resolve());
  }).catch(async (error: unknown) => {
    udp.close();
    throw error;
  });

  return {
    ip,
    port,
    address: port === 53 ? ip : `${ip}:${port}`,
    get queries() {
      return udpQueries + tcpQueries;
    },
    get udpQueries() {
      return udpQueries;
    },
    get tcpQueries() {
      return tcpQueries;
    },
    names,
    async close() {
      for (const c of conns) c.destroy();
      await Promise.all([new Promise<void>((r) => udp.close(() => r())), new Promise<void>((r) => tcp.close(() => r()))]);
    },
  };
}
