// A hostile client inside a container's netns: floods 127.0.0.11:53 with random and mutated DNS
// datagrams and abuses TCP (bad length prefixes, half messages, idle and excess connections), then
// checks the resolver still answers this container over UDP and TCP. Prints figures as JSON.
// Usage: node fuzz.mjs COUNT SEED KNOWN_NAME RATE_PER_S
import dgram from 'node:dgram';
import net from 'node:net';
import dnsPacket from 'dns-packet';

const [countArg = '100000', seedArg = '1', known = 'web', rateArg = '25000'] = process.argv.slice(2);
const COUNT = Number(countArg);
const RATE = Number(rateArg);
let seed = Number(seedArg) >>> 0 || 1;
const rnd = (n) => {
  // xorshift32: deterministic per seed, so a failure can be replayed
  seed ^= seed << 13;
  seed >>>= 0;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  seed >>>= 0;
  return seed % n;
};
const randBytes = (n) => {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = rnd(256);
  return b;
};
const HOST = '127.0.0.11';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------- seeds: valid queries and hand-made nasties ----------
const q = (name, type = 'A', extra = {}) =>
  dnsPacket.encode({ type: 'query', id: rnd(65536), flags: dnsPacket.RECURSION_DESIRED, questions: [{ type, class: 'IN', name }], ...extra });
const opt = (udpPayloadSize, ednsVersion = 0) => ({ additionals: [{ type: 'OPT', name: '.', udpPayloadSize, ednsVersion, flags: 0, options: [] }] });
const header = (id, flags, qd, an, ns, ar) => {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(id, 0);
  h.writeUInt16BE(flags, 2);
  h.writeUInt16BE(qd, 4);
  h.writeUInt16BE(an, 6);
  h.writeUInt16BE(ns, 8);
  h.writeUInt16BE(ar, 10);
  return h;
};
const nasties = [
  Buffer.concat([header(1, 0x0100, 1, 0, 0, 0), Buffer.from([0xc0, 12, 0, 1, 0, 1])]), // pointer to itself
  Buffer.concat([header(2, 0x0100, 1, 0, 0, 0), Buffer.from([0xc0, 0xff, 0, 1, 0, 1])]), // pointer out of bounds
  Buffer.concat([header(3, 0x0100, 1, 0, 0, 0), Buffer.from([3, 97, 98, 99, 0xc0, 12, 0, 1, 0, 1])]), // loop through a label
  Buffer.concat([header(4, 0x0100, 1, 0, 0, 0), Buffer.from([64, ...Buffer.alloc(64, 97), 0, 0, 1, 0, 1])]), // label > 63
  Buffer.concat([header(5, 0x0100, 1, 0, 0, 0), ...Array.from({ length: 5 }, () => Buffer.from([63, ...Buffer.alloc(63, 98)])), Buffer.from([0, 0, 1, 0, 1])]), // name > 255
  Buffer.concat([header(6, 0x0100, 0, 0, 0, 0)]), // no question
  Buffer.concat([header(7, 0x0100, 65535, 65535, 65535, 65535), Buffer.from([0, 0, 1, 0, 1])]), // counts lie
  Buffer.concat([header(8, 0x0100, 2, 0, 0, 0), Buffer.from([0, 0, 1, 0, 1, 0, 0, 1, 0, 1])]), // two questions
  Buffer.concat([header(9, 0x2900, 1, 0, 0, 0), Buffer.from([3, 119, 101, 98, 0, 0, 6, 0, 1])]), // opcode UPDATE
  Buffer.concat([header(10, 0x8100, 1, 0, 0, 0), Buffer.from([3, 119, 101, 98, 0, 0, 1, 0, 1])]), // QR set
  Buffer.concat([header(11, 0x0100, 1, 0, 0, 2), Buffer.from([0, 0, 1, 0, 1]), Buffer.from([0, 0, 41, 4, 208, 0, 0, 0, 0, 0, 0]), Buffer.from([0, 0, 41, 4, 208, 0, 0, 0, 0, 0, 0])]), // two OPT
  Buffer.concat([header(12, 0x0100, 1, 0, 0, 1), Buffer.from([0, 0, 1, 0, 1]), Buffer.from([0, 0, 41, 0xff, 0xff, 0, 0, 0, 0, 0xff, 0xff, 0, 1])]), // OPT rdlen lies
  Buffer.concat([header(13, 0x0100, 1, 0, 0, 1), Buffer.from([0, 0, 1, 0, 1]), Buffer.from([0, 0, 41, 0, 0, 0, 0, 0, 0, 0, 0])]), // OPT size 0
  Buffer.alloc(0),
  Buffer.alloc(11),
  Buffer.alloc(12),
  randBytes(65000), // near the largest datagram
];
const seeds = [
  q(known),
  q(known.toUpperCase() + '.', 'AAAA'),
  q(`${known}.app`, 'A', opt(4096)),
  q(known, 'ANY', opt(512, 1)),
  q('1.0.0.127.in-addr.arpa', 'PTR'),
  q('nx.example.test', 'A'),
  q('www.example.test', 'MX', opt(1232)),
  q('a'.repeat(63) + '.' + 'b'.repeat(63) + '.' + 'c'.repeat(63) + '.' + 'd'.repeat(61), 'TXT'),
  ...nasties,
];

function mutate(msg) {
  let m = Buffer.from(msg);
  const n = 1 + rnd(4);
  for (let i = 0; i < n; i++) {
    const op = rnd(6);
    if (op === 0 && m.length > 0) m[rnd(m.length)] = rnd(256);
    else if (op === 1) m = m.subarray(0, rnd(m.length + 1));
    else if (op === 2) m = Buffer.concat([m, randBytes(1 + rnd(40))]);
    else if (op === 3 && m.length > 2) m[rnd(m.length)] ^= 1 << rnd(8);
    else if (op === 4 && m.length > 13) m.writeUInt16BE(0xc000 | rnd(m.length + 20), 12 + rnd(m.length - 13)); // a stray pointer
    else if (op === 5 && m.length >= 12) m.writeUInt16BE(rnd(4), 4 + 2 * rnd(4)); // counts
  }
  return m;
}

function nextDatagram(i) {
  const k = i % 4;
  if (k === 0) return randBytes(rnd(700));
  if (k === 1) return nasties[rnd(nasties.length)];
  return mutate(seeds[rnd(seeds.length)]);
}

// ---------- UDP flood ----------
async function udpFlood() {
  const socks = await Promise.all(
    Array.from({ length: 8 }, () => new Promise((resolve) => {
      const s = dgram.createSocket('udp4');
      s.bind(0, '127.0.0.1', () => resolve(s));
    })),
  );
  const r = { sent: 0, sendErrors: 0, replies: 0, badReplies: 0 };
  for (const s of socks) {
    s.on('message', (m) => {
      r.replies++;
      try {
        dnsPacket.decode(m);
        if ((m[2] & 0x80) === 0) r.badReplies++; // a reply without QR
      } catch {
        r.badReplies++;
      }
    });
    s.on('error', () => r.sendErrors++);
  }
  const start = Date.now();
  const BATCH = 250;
  for (let i = 0; i < COUNT; ) {
    for (let j = 0; j < BATCH && i < COUNT; j++, i++) {
      const d = nextDatagram(i);
      socks[i % socks.length].send(d, 53, HOST, (err) => {
        if (err) r.sendErrors++;
      });
      r.sent++;
    }
    const ahead = i / RATE * 1000 - (Date.now() - start);
    await (ahead > 1 ? sleep(ahead) : new Promise((res) => setImmediate(res)));
  }
  r.seconds = (Date.now() - start) / 1000;
  await sleep(1500); // late replies (forwarded ones)
  for (const s of socks) s.close();
  return r;
}

// ---------- TCP abuse ----------
function conn(label, t) {
  const s = net.connect(53, HOST);
  const c = { s, label, closedAt: 0, openedAt: Date.now(), refused: false, connected: false };
  s.on('connect', () => (c.connected = true));
  s.on('error', () => (c.refused = !c.connected));
  s.on('close', () => (c.closedAt = Date.now()));
  s.on('data', () => {});
  t.push(c);
  return c;
}
const framed = (msg) => {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(msg.length);
  return Buffer.concat([len, msg]);
};

async function tcpAbuse() {
  const all = [];
  const kinds = {};
  const start = Date.now();
  const add = (label, fn, n) => {
    kinds[label] = n;
    for (let i = 0; i < n; i++) {
      const c = conn(label, all);
      c.s.on('connect', () => fn(c.s));
    }
  };
  add('zero-length', (s) => s.write(Buffer.from([0, 0])), 10);
  add('huge-length-half', (s) => s.write(Buffer.concat([Buffer.from([0xff, 0xff]), randBytes(100)])), 10);
  add('half-then-close', (s) => s.end(Buffer.concat([Buffer.from([0, 50]), randBytes(10)])), 10);
  add('garbage', (s) => s.end(randBytes(2048)), 10);
  add('framed-mutations', (s) => s.end(Buffer.concat(Array.from({ length: 50 }, (_, i) => framed(mutate(seeds[i % seeds.length])).subarray(0)).filter((b) => b.readUInt16BE(0) > 0))), 10);
  add('idle', () => {}, 10);
  await sleep(500);
  // Then many at once, beyond the per-container cap.
  add('burst', () => {}, 200);
  await sleep(1500);
  const earlyClosed = {};
  for (const c of all) if (c.closedAt) earlyClosed[c.label] = (earlyClosed[c.label] ?? 0) + 1;
  // Wait for the server's idle timeout (10 s, then 2 s for a client that never closes).
  for (let i = 0; i < 100 && all.some((c) => !c.closedAt); i++) await sleep(200);
  const stillOpen = all.filter((c) => !c.closedAt).length;
  for (const c of all) c.s.destroy();
  return { connections: all.length, kinds, closedEarly: earlyClosed, stillOpenAfterIdle: stillOpen, seconds: (Date.now() - start) / 1000 };
}

// ---------- afterwards: this container is still served ----------
async function finalCheck() {
  const out = {};
  const udp = await new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    const timer = setTimeout(() => (s.close(), resolve(null)), 2000);
    s.on('message', (m) => (clearTimeout(timer), s.close(), resolve(m)));
    s.send(q(known), 53, HOST);
  });
  out.udp = udp ? dnsPacket.decode(udp).answers.map((a) => a.data) : null;
  const tcp = await new Promise((resolve) => {
    const s = net.connect(53, HOST, () => s.write(framed(q(known))));
    const timer = setTimeout(() => (s.destroy(), resolve(null)), 2000);
    let buf = Buffer.alloc(0);
    s.on('data', (c) => {
      buf = Buffer.concat([buf, c]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) (clearTimeout(timer), s.destroy(), resolve(buf.subarray(2)));
    });
    s.on('error', () => (clearTimeout(timer), resolve(null)));
  });
  out.tcp = tcp ? dnsPacket.decode(tcp).answers.map((a) => a.data) : null;
  return out;
}

const [udp, tcp] = await Promise.all([udpFlood(), tcpAbuse()]);
const after = await finalCheck();
process.stdout.write(JSON.stringify({ udp, tcp, after }) + '\n');
process.exit(0);
