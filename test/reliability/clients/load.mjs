// A well-behaved client inside a netns: resolves NAME at 127.0.0.11 (UDP, every 10th over TCP), one query
// at a time per worker, until STOPFILE exists or the time limit; checks every answer; prints counts as JSON.
// Usage: node load.mjs NAME EXPECTED_IP STOPFILE MAX_SECONDS [WORKERS] [TIMEOUT_MS]
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import dnsPacket from 'dns-packet';

const [name, expected, stopFile, maxSec, workersArg = '4', timeoutArg = '2000'] = process.argv.slice(2);
const deadline = Date.now() + Number(maxSec) * 1000;
const timeoutMs = Number(timeoutArg);
const stats = { sent: 0, answered: 0, wrong: 0, lost: 0, tcp: 0, maxLatencyMs: 0, firstLostAt: null };
const t0 = Date.now();

function query(id) {
  return dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', class: 'IN', name }] });
}

function udpOnce(sock, id) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => (sock.off('message', on), resolve(null)), timeoutMs);
    const on = (m) => {
      if (m.length < 2 || m.readUInt16BE(0) !== id) return;
      clearTimeout(timer);
      sock.off('message', on);
      resolve(m);
    };
    sock.on('message', on);
    sock.send(query(id), 53, '127.0.0.11');
  });
}

function tcpOnce(id) {
  return new Promise((resolve) => {
    const s = net.connect(53, '127.0.0.11');
    const timer = setTimeout(() => (s.destroy(), resolve(null)), timeoutMs);
    let buf = Buffer.alloc(0);
    s.on('connect', () => {
      const q = query(id);
      const len = Buffer.alloc(2);
      len.writeUInt16BE(q.length);
      s.write(Buffer.concat([len, q]));
    });
    s.on('data', (c) => {
      buf = Buffer.concat([buf, c]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        clearTimeout(timer);
        s.destroy();
        resolve(buf.subarray(2, 2 + buf.readUInt16BE(0)));
      }
    });
    s.on('error', () => (clearTimeout(timer), resolve(null)));
  });
}

async function worker(w) {
  const sock = dgram.createSocket('udp4');
  await new Promise((r) => sock.bind(0, '127.0.0.1', r));
  let n = 0;
  while (Date.now() < deadline && !fs.existsSync(stopFile)) {
    const id = (w * 16384 + (n % 16384)) & 0xffff;
    const useTcp = n % 10 === 9;
    n++;
    stats.sent++;
    if (useTcp) stats.tcp++;
    const start = Date.now();
    const reply = useTcp ? await tcpOnce(id) : await udpOnce(sock, id);
    stats.maxLatencyMs = Math.max(stats.maxLatencyMs, Date.now() - start);
    if (!reply) {
      stats.lost++;
      stats.firstLostAt ??= Date.now() - t0;
      continue;
    }
    const p = dnsPacket.decode(reply);
    const ips = (p.answers ?? []).filter((a) => a.type === 'A').map((a) => a.data);
    if (p.rcode === 'NOERROR' && ips.length === 1 && ips[0] === expected) stats.answered++;
    else stats.wrong++;
  }
  sock.close();
}

await Promise.all(Array.from({ length: Number(workersArg) }, (_, w) => worker(w)));
process.stdout.write(JSON.stringify(stats) + '\n');
