// A fake DNS server (UDP and TCP) answering from a fixed table: the demo's upstreams, and the tests' (on a
// loopback address, or run as a program inside a namespace or container):
//   node dist/demo/fake-dns.js IP PORT '{"name":"192.0.2.1",...}'     prints "ready" once both sockets are bound.
import dgram from 'node:dgram';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import dnsPacket, { type Packet } from 'dns-packet';

type Question = NonNullable<Packet['questions']>[number];

/**
 * A name's answer: A address(es), an rcode, DROP (no reply), `{ txtBytes }` (TXT records making a reply of
 * about that many bytes, whatever the query's EDNS size: an upstream that fills a big buffer), or
 * `{ delayMs, then }` (that answer, late; with `once`, only the first query for the name and type gets it,
 * later ones nothing).
 */
export type FakeAnswer = string | string[] | 'NXDOMAIN' | 'SERVFAIL' | 'REFUSED' | 'DROP' | { txtBytes: number } | { delayMs: number; then: FakeAnswer; once?: boolean };

export interface FakeDns {
  ip: string;
  port: number;
  /** `ip` when port is 53, else `ip:port`: what to give a resolver. */
  address: string;
  readonly queries: number;
  readonly udpQueries: number;
  readonly tcpQueries: number;
  /** Question names seen, in order, as sent (case kept). */
  readonly names: string[];
  close(): Promise<void>;
}

const RCODES: Record<string, number> = { NXDOMAIN: 3, SERVFAIL: 2, REFUSED: 5 };

/**
 * Serve `answers` (lower-case name -> FakeAnswer) on ip:53 over UDP and TCP.
 * Names not in the table get NXDOMAIN. Only A (and TXT) records are produced; other types get NODATA.
 */
export async function startFakeDns(ip: string, answers: Record<string, FakeAnswer>, opts: { port?: number } = {}): Promise<FakeDns> {
  const port = opts.port ?? 53;
  const table = new Map(Object.entries(answers).map(([k, v]) => [k.toLowerCase().replace(/\.$/, ''), v]));
  const names: string[] = [];
  let udpQueries = 0;
  let tcpQueries = 0;

  const encode = (q: Packet, question: Question, entry: FakeAnswer): Buffer | null => {
    if (entry === 'DROP' || (typeof entry === 'object' && 'delayMs' in entry)) return null;
    if (typeof entry === 'object' && 'txtBytes' in entry) {
      // 255-byte strings, 4 per record (~1 KiB), until the reply is about txtBytes long.
      const records = [];
      for (let size = 12 + question.name.length + 6; size < entry.txtBytes; size += 1040) {
        records.push({ type: 'TXT' as const, name: question.name, ttl: 30, data: Array.from({ length: 4 }, (_, i) => 'x'.repeat(254) + String(i)) });
      }
      return dnsPacket.encode({ type: 'response', id: q.id ?? 0, flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE, questions: q.questions ?? [], answers: records });
    }
    const rcode = typeof entry === 'string' ? RCODES[entry] : undefined;
    const addrs = rcode !== undefined ? [] : Array.isArray(entry) ? entry : [entry as string];
    return dnsPacket.encode({
      type: 'response',
      id: q.id ?? 0,
      flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | (rcode ?? 0),
      questions: q.questions ?? [],
      answers: question.type === 'A' ? addrs.map((data) => ({ type: 'A' as const, name: question.name, ttl: 30, data })) : [],
    });
  };

  /** Answer `msg` through `send`, at once or (a delayed entry) later. */
  const answer = (msg: Buffer, send: (reply: Buffer) => void): void => {
    let q: Packet;
    try {
      q = dnsPacket.decode(msg);
    } catch {
      return;
    }
    const question = q.questions?.[0];
    if (!question) return;
    names.push(question.name);
    const entry = table.get(question.name.toLowerCase()) ?? 'NXDOMAIN';
    if (typeof entry === 'object' && 'delayMs' in entry) {
      const key = `${question.name.toLowerCase()} ${question.type}`;
      if (entry.once && answeredOnce.has(key)) return;
      answeredOnce.add(key);
      const r = encode(q, question, entry.then);
      if (r) timers.add(setTimeout(() => send(r), entry.delayMs));
      return;
    }
    const r = encode(q, question, entry);
    if (r) send(r);
  };
  const timers = new Set<NodeJS.Timeout>();
  let closed = false;
  const answeredOnce = new Set<string>();

  const udp = dgram.createSocket('udp4');
  udp.on('message', (msg, rinfo) => {
    udpQueries++;
    answer(msg, (r) => udp.send(r, rinfo.port, rinfo.address, () => {}));
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
        answer(msg, (r) => {
          const len = Buffer.alloc(2);
          len.writeUInt16BE(r.length);
          if (!sock.destroyed) sock.write(Buffer.concat([len, r]));
        });
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
      if (closed) return;
      closed = true;
      for (const t of timers) clearTimeout(t);
      for (const c of conns) c.destroy();
      await Promise.all([new Promise<void>((r) => udp.close(() => r())), new Promise<void>((r) => tcp.close(() => r()))]);
    },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [ip = '0.0.0.0', port = '53', table = '{}'] = process.argv.slice(2);
  void startFakeDns(ip, JSON.parse(table) as Record<string, FakeAnswer>, { port: Number(port) }).then((server) => {
    process.stdout.write('ready\n');
    const stop = (): void => void server.close().then(() => process.exit(0));
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}
