// A fake DNS server (UDP and TCP) answering from a fixed table, for tests: imported by fake-upstream.ts (on a
// loopback address of the host), and run as a program inside namespaces and containers:
//   node fake-dns.mjs IP PORT '{"name":"192.0.2.1",...}'     prints "ready" once both sockets are bound.
import dgram from 'node:dgram';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import dnsPacket from 'dns-packet';

const RCODES = { NXDOMAIN: 3, SERVFAIL: 2, REFUSED: 5 };

/**
 * Serve `answers` (lower-case name -> FakeAnswer) on ip:53 over UDP and TCP.
 * Names not in the table get NXDOMAIN. Only A (and TXT) records are produced; other types get NODATA.
 */
export async function startFakeDns(ip, answers, opts = {}) {
  const port = opts.port ?? 53;
  const table = new Map(Object.entries(answers).map(([k, v]) => [k.toLowerCase().replace(/\.$/, ''), v]));
  const names = [];
  let udpQueries = 0;
  let tcpQueries = 0;

  const encode = (q, question, entry) => {
    if (entry === 'DROP' || (typeof entry === 'object' && 'delayMs' in entry)) return null;
    if (typeof entry === 'object' && 'txtBytes' in entry) {
      // 255-byte strings, 4 per record (~1 KiB), until the reply is about txtBytes long.
      const records = [];
      for (let size = 12 + question.name.length + 6; size < entry.txtBytes; size += 1040) {
        records.push({ type: 'TXT', name: question.name, ttl: 30, data: Array.from({ length: 4 }, (_, i) => 'x'.repeat(254) + String(i)) });
      }
      return dnsPacket.encode({ type: 'response', id: q.id ?? 0, flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE, questions: q.questions ?? [], answers: records });
    }
    const rcode = typeof entry === 'string' ? RCODES[entry] : undefined;
    const addrs = rcode !== undefined ? [] : Array.isArray(entry) ? entry : [entry];
    return dnsPacket.encode({
      type: 'response',
      id: q.id ?? 0,
      flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | (rcode ?? 0),
      questions: q.questions ?? [],
      answers: question.type === 'A' ? addrs.map((data) => ({ type: 'A', name: question.name, ttl: 30, data })) : [],
    });
  };

  /** Answer `msg` through `send`, at once or (a delayed entry) later. */
  const answer = (msg, send) => {
    let q;
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
  const timers = new Set();
  let closed = false;
  const answeredOnce = new Set();

  const udp = dgram.createSocket('udp4');
  udp.on('message', (msg, rinfo) => {
    udpQueries++;
    answer(msg, (r) => udp.send(r, rinfo.port, rinfo.address, () => {}));
  });
  await new Promise((resolve, reject) => {
    udp.once('error', reject);
    udp.bind(port, ip, () => resolve());
  });

  const conns = new Set();
  const tcp = net.createServer((sock) => {
    conns.add(sock);
    sock.on('close', () => conns.delete(sock));
    sock.on('error', () => {});
    let buf = Buffer.alloc(0);
    sock.on('data', (chunk) => {
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
  await new Promise((resolve, reject) => {
    tcp.once('error', reject);
    tcp.listen(port, ip, () => resolve());
  }).catch(async (error) => {
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
      await Promise.all([new Promise((r) => udp.close(() => r())), new Promise((r) => tcp.close(() => r()))]);
    },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [ip = '0.0.0.0', port = '53', table = '{}'] = process.argv.slice(2);
  const server = await startFakeDns(ip, JSON.parse(table), { port: Number(port) });
  process.stdout.write('ready\n');
  const stop = () => void server.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
