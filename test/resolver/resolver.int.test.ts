// Resolver end to end (root): sockets handed off into a throwaway netns, queried from inside with dig, getent and raw clients.
import dnsPacket from 'dns-packet';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openResolverSockets } from '../../src/netns/resolver-sockets.js';
import { Resolver, type ResolverRegistration } from '../../src/resolver/index.js';
import { execa } from 'execa';
import { FAKE_DNS, randomLoopback, startFakeUpstream, type FakeAnswer, type FakeUpstream } from '../helpers/fake-upstream.js';
import { createTestNetns, type TestNetns } from '../helpers/netns.js';
import { hexId } from './fixtures.js';

const ME = hexId('me');
const WEB = hexId('web');

let ns: TestNetns | undefined;
let resolver: Resolver | undefined;
let upstreams: FakeUpstream[] = [];
let logs: string[] = [];
let udpPath: 'native' | 'dgram' = 'native';
let servers: (() => Promise<void>)[] = []; // fake DNS servers run inside the test netns

beforeEach(async () => {
  logs = [];
  ns = await createTestNetns();
  resolver = new Resolver({ log: (l) => logs.push(l), upstreamTimeoutMs: 400, tcpIdleMs: 1000, nativeUdp: udpPath === 'native' });
  // Never let a test fall back to the public defaults: no upstream unless a test sets a fake one.
  resolver.setHostUpstreams(['127.0.0.1:9']);
});

afterEach(async () => {
  const errors: unknown[] = [];
  for (const stop of servers) await stop().catch((e: unknown) => errors.push(e));
  servers = [];
  await resolver?.close().catch((e: unknown) => errors.push(e));
  for (const u of upstreams) await u.close().catch((e: unknown) => errors.push(e));
  await ns?.destroy().catch((e: unknown) => errors.push(e));
  resolver = undefined;
  ns = undefined;
  upstreams = [];
  if (errors.length > 0) throw errors[0];
});

async function fake(answers: Record<string, FakeAnswer>): Promise<FakeUpstream> {
  // A random 127.53.x.y might collide with a parallel run: retry a few times.
  for (let i = 0; ; i++) {
    try {
      const u = await startFakeUpstream(randomLoopback(), answers);
      upstreams.push(u);
      return u;
    } catch (error) {
      if (i >= 5) throw error;
    }
  }
}

/** A fake DNS server inside the test netns (on its own loopback), as a container's own server would be. */
async function fakeInNetns(ip: string, answers: Record<string, FakeAnswer>): Promise<void> {
  const child = execa('ip', ['netns', 'exec', ns!.name, process.execPath, FAKE_DNS, ip, '53', JSON.stringify(answers)], { reject: false });
  servers.push(async () => {
    child.kill('SIGTERM');
    await child;
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => String(d).includes('ready') && resolve());
    void child.then((r) => reject(new Error(`fake DNS in the netns exited: ${String(r.stderr)}`)));
  });
}

/** A resolver with other options in place of the one beforeEach made. */
async function replaceResolver(opts: Omit<ConstructorParameters<typeof Resolver>[0] & object, 'log' | 'nativeUdp'>): Promise<void> {
  await resolver?.close();
  resolver = new Resolver({ log: (l) => logs.push(l), nativeUdp: udpPath === 'native', ...opts });
  resolver.setHostUpstreams(['127.0.0.1:9']);
}

function me(over: Partial<ResolverRegistration> = {}): ResolverRegistration {
  return { id: ME, name: 'me', hostname: 'me', endpoints: [{ network: 'app', ipv4: '10.77.0.2', aliases: [] }], links: [], dns: [], forward: true, ...over };
}

async function start(over: Partial<ResolverRegistration> = {}): Promise<void> {
  const r = resolver!;
  r.upsert(me(over));
  r.upsert({ id: WEB, name: 'web', hostname: 'webhost', endpoints: [{ network: 'app', ipv4: '10.77.0.3', ipv6: 'fd77::3', aliases: ['www'] }], links: [], dns: [], forward: true });
  for (let i = 0; i < 60; i++) {
    r.upsert({ id: hexId(`big${i}`), name: `big${i}`, hostname: `big${i}`, endpoints: [{ network: 'app', ipv4: `10.77.1.${i + 1}`, aliases: ['big'] }], links: [], dns: [], forward: true });
  }
  const { udp, tcp } = await openResolverSockets(ns!.path);
  r.attach(ME, udp, tcp);
}

interface Dig {
  status: string;
  flags: string[];
  answers: string[][];
  stdout: string;
}

async function dig(...args: string[]): Promise<Dig> {
  const r = await ns!.exec(['dig', '@127.0.0.11', '+tries=1', '+timeout=4', ...args]);
  const stdout = String(r.stdout);
  const status = /status: (\w+)/.exec(stdout)?.[1] ?? `no answer (exit ${r.exitCode}): ${stdout}${String(r.stderr)}`;
  const flags = (/;; flags: ([a-z ]+);/.exec(stdout)?.[1] ?? '').split(' ');
  const answers: string[][] = [];
  const lines = stdout.split('\n');
  const at = lines.findIndex((l) => l.startsWith(';; ANSWER SECTION'));
  if (at >= 0) for (let i = at + 1; i < lines.length && lines[i]!.trim() !== ''; i++) answers.push(lines[i]!.split(/\s+/));
  return { status, flags, answers, stdout };
}

const data = (d: Dig) => d.answers.map((a) => a[4]).sort();

/** A raw TCP client run inside the netns: writes `hex`, collects framed replies until the server closes or `waitMs`. */
const TCP_CLIENT = `
const net = require('net');
const [hex, waitMs, trickleMs] = process.argv.slice(1);
const bytes = Buffer.from(hex, 'hex');
const s = net.connect(53, '127.0.0.11', () => {
  if (!trickleMs) return s.write(bytes);
  let i = 0; const tick = setInterval(() => { if (i >= bytes.length || s.destroyed) return clearInterval(tick); s.write(bytes.subarray(i, i + 1)); i++; }, Number(trickleMs));
});
let buf = Buffer.alloc(0); const replies = []; let closed = false;
s.on('data', (d) => { buf = Buffer.concat([buf, d]);
  while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) { const n = buf.readUInt16BE(0); replies.push(buf.subarray(2, 2 + n).toString('hex')); buf = buf.subarray(2 + n); } });
s.on('error', () => {});
s.on('close', () => { closed = true; done(); });
const t = setTimeout(done, Number(waitMs));
function done() { clearTimeout(t); console.log(JSON.stringify({ replies, closed })); process.exit(0); }
`;

async function tcpClient(bytes: Buffer, waitMs: number, trickleMs?: number): Promise<{ replies: Buffer[]; closed: boolean }> {
  const r = await ns!.exec([process.execPath, '-e', TCP_CLIENT, bytes.toString('hex'), String(waitMs), ...(trickleMs ? [String(trickleMs)] : [])]);
  const out = JSON.parse(String(r.stdout)) as { replies: string[]; closed: boolean };
  return { replies: out.replies.map((h) => Buffer.from(h, 'hex')), closed: out.closed };
}

function framed(...msgs: Buffer[]): Buffer {
  return Buffer.concat(
    msgs.map((m) => {
      const l = Buffer.alloc(2);
      l.writeUInt16BE(m.length);
      return Buffer.concat([l, m]);
    }),
  );
}

const q = (name: string, type = 'A', id = 1) => dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ name, type: type as 'A' }] });

// Every case runs on both UDP paths: the udpbatch addon (recvmmsg/sendmmsg) and node:dgram, its fallback.
describe.each(['native', 'dgram'] as const)('resolver in a netns, UDP through %s', (path) => {
  beforeAll(() => {
    udpPath = path;
  });

  it('serves UDP through the path under test', async () => {
    await start();
    expect(data(await dig('web'))).toEqual(['10.77.0.3']);
    expect(resolver!.stats().udpPath).toBe(path);
    expect(logs.filter((l) => l.includes('node:dgram'))).toEqual([]);
  });

  it('answers local names over UDP and TCP, keeps case, TTL 600, and getent resolves', async () => {
    await start();
    const a = await dig('WeB', 'A');
    expect(a.status).toBe('NOERROR');
    expect(a.answers).toEqual([['WeB.', '600', 'IN', 'A', '10.77.0.3']]);
    expect(a.flags).toEqual(expect.arrayContaining(['qr', 'rd', 'ra']));
    expect(data(await dig('+tcp', 'www.app', 'AAAA'))).toEqual(['fd77::3']);
    expect((await dig('me', 'AAAA')).answers).toEqual([]); // NODATA
    expect((await dig('me', 'AAAA')).status).toBe('NOERROR');
    expect(data(await dig('-x', '10.77.0.3'))).toEqual(['web.app.']);
    const g = await ns!.exec(['getent', 'hosts', 'web']);
    expect(String(g.stdout)).toMatch(/^(10\.77\.0\.3|fd77::3)\s+web/);
    const s = resolver!.stats();
    expect(s.local).toBeGreaterThanOrEqual(5);
    expect(s.perNetwork.app?.local).toBe(s.local);
  });

  it('forwards other names to the upstream and passes NXDOMAIN through', async () => {
    const up = await fake({ 'example.test': '192.0.2.10' });
    resolver!.setHostUpstreams([up.address]);
    await start();
    const a = await dig('Example.Test', 'A');
    expect(a.status).toBe('NOERROR');
    expect(data(a)).toEqual(['192.0.2.10']);
    expect(a.answers[0]![0]).toBe('Example.Test.');
    expect((await dig('missing.test')).status).toBe('NXDOMAIN');
    expect(data(await dig('+tcp', 'example.test'))).toEqual(['192.0.2.10']);
    expect(up.udpQueries).toBe(2);
    expect(up.tcpQueries).toBe(1); // TCP in, TCP out
    expect(resolver!.stats().forwarded).toBe(3);
    expect(resolver!.upstreamsFor(ME)).toEqual([up.address]);
  });

  it('moves to the next upstream on SERVFAIL and on REFUSED', async () => {
    const bad = await fake({ 'a.test': 'SERVFAIL', 'b.test': 'REFUSED' });
    const good = await fake({ 'a.test': '192.0.2.1', 'b.test': '192.0.2.2' });
    resolver!.setHostUpstreams([bad.address, good.address]);
    await start();
    expect(data(await dig('a.test'))).toEqual(['192.0.2.1']);
    expect(data(await dig('b.test'))).toEqual(['192.0.2.2']);
    expect(bad.queries).toBe(2);
    expect(resolver!.stats().upstreamFailures).toBe(2);
  });

  it('answers SERVFAIL when the only upstream is silent, and tries a silent upstream last afterwards', async () => {
    const silent = await fake({ 'x.test': 'DROP', 'y.test': 'DROP', 'z.test': 'DROP' });
    await start({ dns: [silent.address] });
    const a = await dig('x.test');
    expect(a.status).toBe('SERVFAIL');
    expect(silent.names.filter((n) => n === 'x.test').length).toBeGreaterThanOrEqual(2); // asked again within the budget
    const good = await fake({ 'y.test': '192.0.2.7', 'z.test': '192.0.2.8' });
    resolver!.upsert(me({ dns: [silent.address, good.address] }));
    expect(data(await dig('y.test'))).toEqual(['192.0.2.7']); // after the silent one timed out
    expect(data(await dig('z.test'))).toEqual(['192.0.2.8']);
    expect(silent.names).not.toContain('z.test'); // remembered dead: the good one was asked first
    expect(logs.some((l) => l.startsWith('[resolver] ') && l.includes('SERVFAIL'))).toBe(true);
  });

  it('answers SERVFAIL at once for non-local names when forwarding is off (--internal)', async () => {
    const up = await fake({ 'example.test': '192.0.2.10' });
    resolver!.setHostUpstreams([up.address]);
    await start({ forward: false });
    expect((await dig('example.test')).status).toBe('SERVFAIL');
    expect(data(await dig('web'))).toEqual(['10.77.0.3']);
    expect(up.queries).toBe(0);
  });

  it('answers SERVFAIL (not REFUSED) when no query may be in flight nor wait', async () => {
    await replaceResolver({ maxInflightPerContainer: 0, maxQueuedPerContainer: 0 });
    await start();
    expect((await dig('example.test')).status).toBe('SERVFAIL');
  });

  it.each([
    ['the default limits', {}],
    ['50 in flight, the rest waiting for a slot', { maxInflightPerContainer: 50 }],
  ])('answers a burst of 400 distinct forwarded queries (200 names, A and AAAA) with a 50 ms upstream, under %s', async (_, limits) => {
    await replaceResolver({ upstreamTimeoutMs: 1500, ...limits });
    const table: Record<string, FakeAnswer> = {};
    for (let i = 0; i < 200; i++) table[`n${i}.burst.test`] = { delayMs: 50, then: `192.0.2.${(i % 250) + 1}` };
    const up = await fake(table);
    resolver!.setHostUpstreams([up.address]);
    await start();
    // All at once from one socket, as Go's resolver does from 200 goroutines; every reply counted by rcode.
    // A socket per name, as Go dials one per lookup (one socket's receive buffer would overflow first).
    const script = `
      const dgram = require('dgram'); const enc = (id, name, type) => { const n = Buffer.concat(name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]))); const b = Buffer.alloc(12 + n.length + 5); b.writeUInt16BE(id, 0); b[2] = 1; b.writeUInt16BE(1, 4); n.copy(b, 12); b.writeUInt16BE(type, 12 + n.length + 1); b.writeUInt16BE(1, 12 + n.length + 3); return b; };
      const rcodes = {}; let got = 0;
      for (let i = 0; i < 200; i++) {
        const sock = dgram.createSocket('udp4');
        sock.on('message', (m) => { const rc = m[3] & 15; rcodes[rc] = (rcodes[rc] || 0) + 1; if (++got === 400) { console.log(JSON.stringify(rcodes)); process.exit(0); } });
        sock.bind(0, () => { for (const t of [1, 28]) sock.send(enc(t, 'n' + i + '.burst.test', t), 53, '127.0.0.11'); });
      }
      setTimeout(() => { console.log(JSON.stringify({ ...rcodes, missing: 400 - got })); process.exit(0); }, 6000);`;
    const r = await ns!.exec([process.execPath, '-e', script]);
    expect(JSON.parse(String(r.stdout))).toEqual({ 0: 400 }); // NOERROR for all 400
    if ('maxInflightPerContainer' in limits) expect(resolver!.stats().queued).toBeGreaterThan(0);
  });

  it('passes on a forwarded UDP reply of up to 64 KiB (dig +bufsize=65535)', async () => {
    const up = await fake({ 'huge.test': { txtBytes: 30000 } });
    resolver!.setHostUpstreams([up.address]);
    await start();
    const d = await dig('+bufsize=65535', '+ignore', 'huge.test', 'TXT');
    expect(d.status).toBe('NOERROR');
    expect(d.flags).not.toContain('tc');
    expect(d.answers).toHaveLength(Math.ceil((30000 - 12 - 'huge.test'.length - 6) / 1040));
    expect(up.tcpQueries).toBe(0);
    expect(logs).toEqual([]);
  });

  it('waits for a slow only upstream and takes its late answer, which is no failure', async () => {
    // Here an attempt times out after 400 ms within a 1.2 s budget; the upstream answers only its first query, after 800 ms.
    const up = await fake({ 'slow.test': { delayMs: 800, then: '192.0.2.8', once: true } });
    resolver!.setHostUpstreams([up.address]);
    await start();
    expect(data(await dig('slow.test'))).toEqual(['192.0.2.8']);
    expect(up.udpQueries).toBeGreaterThanOrEqual(2);
    expect(logs).toEqual([]); // no timeout, no dead upstream to report
  });

  it('fails over at once from a closed upstream port; alone, it gives SERVFAIL instead of a wait', async () => {
    await replaceResolver({ upstreamTimeoutMs: 20_000 }); // a timeout would outlast dig's 4 s
    const closed = await fake({});
    await closed.close();
    const good = await fake({ 'x.test': '192.0.2.5' });
    resolver!.setHostUpstreams([closed.address, good.address]);
    await start();
    expect(data(await dig('x.test'))).toEqual(['192.0.2.5']);
    expect(logs.some((l) => l.includes(`${closed.address} error (port unreachable)`))).toBe(true);
    resolver!.setHostUpstreams([closed.address]);
    expect((await dig('y.test')).status).toBe('SERVFAIL');
    expect((await dig('+tcp', 'y.test')).status).toBe('SERVFAIL');
  });

  // Docker's rule: --dns servers are dialled from the container's own netns. dgram cannot make a socket in
  // another netns; only the udpbatch addon can (without it they are dialled from the host, and logged so).
  it.skipIf(path === 'dgram')('dials --dns servers from the container netns (its own loopback), also on an --internal network', async () => {
    await fakeInNetns('127.0.0.61', { 'own.test': '192.0.2.61' });
    const host = await fake({ 'own.test': '192.0.2.99' });
    resolver!.setHostUpstreams([host.address]);
    await start({ dns: ['127.0.0.61'], dnsNetns: ns!.path });
    expect(data(await dig('own.test'))).toEqual(['192.0.2.61']);
    expect(data(await dig('+tcp', 'own.test'))).toEqual(['192.0.2.61']);
    resolver!.upsert(me({ dns: ['127.0.0.61'], dnsNetns: ns!.path, forward: false })); // --internal
    expect(data(await dig('Own.Test'))).toEqual(['192.0.2.61']);
    expect(host.queries).toBe(0);
  });

  it('truncates a large answer over UDP and sends it whole over TCP', async () => {
    await start();
    const udp = await dig('+ignore', '+noedns', 'big');
    expect(udp.flags).toContain('tc');
    expect(udp.answers.length).toBeGreaterThan(0);
    expect(udp.answers.length).toBeLessThan(60);
    const small = await dig('+ignore', '+bufsize=700', 'big');
    expect(small.flags).toContain('tc');
    expect((await dig('+bufsize=4096', 'big')).answers).toHaveLength(60);
    expect((await dig('+tcp', 'big')).answers).toHaveLength(60);
    expect((await dig('+noedns', 'big')).answers).toHaveLength(60); // dig retries over TCP by itself
  });

  it('serves several queries on one TCP connection, and closes on a broken length prefix', async () => {
    await start();
    const three = await tcpClient(framed(q('web', 'A', 11), q('me', 'A', 12), q('big', 'A', 13)), 500);
    expect(three.replies.map((r) => dnsPacket.decode(r).id).sort()).toEqual([11, 12, 13]);
    expect(three.closed).toBe(false); // still open after answering all three
    const zero = await tcpClient(Buffer.concat([framed(q('web', 'A', 21)), Buffer.from([0, 0])]), 3000);
    expect(zero.replies).toHaveLength(1);
    expect(zero.closed).toBe(true);
    const idle = await tcpClient(Buffer.alloc(0), 5000);
    expect(idle.closed).toBe(true); // idle timeout (1 s here)
    const cut = await tcpClient(Buffer.from([0, 40, 1, 2, 3]), 2500); // half a message, then idle
    expect(cut.closed).toBe(true);
    // One byte every 300 ms keeps the idle timer (1 s) from firing, but a message must be whole within it.
    const trickle = await tcpClient(framed(q('web', 'A', 31)), 4000, 300);
    expect(trickle.closed).toBe(true);
    expect(trickle.replies).toHaveLength(0);
    expect(data(await dig('+tcp', 'web'))).toEqual(['10.77.0.3']);
  });

  it('keeps resolving after garbage datagrams', async () => {
    await start();
    const script = `
      const d = require('dgram').createSocket('udp4'); const c = require('crypto'); let n = 0;
      const qr = Buffer.from('${q('web').toString('hex')}', 'hex'); qr[2] |= 0x80;
      const msgs = [qr, Buffer.alloc(0), Buffer.alloc(5)];
      for (let i = 0; i < 300; i++) msgs.push(c.randomBytes(c.randomInt(1, 600)));
      for (const m of msgs) d.send(m, 53, '127.0.0.11', () => { if (++n === msgs.length) setTimeout(() => d.close(), 300); });`;
    const r = await ns!.exec([process.execPath, '-e', script]);
    expect(r.exitCode).toBe(0);
    expect(data(await dig('web'))).toEqual(['10.77.0.3']);
    expect(resolver!.stats().dropped).toBeGreaterThan(0);
  });

  it('answers bursts from several clients, each reply to its sender with its own ID', async () => {
    const up = await fake({});
    resolver!.setHostUpstreams([up.address]);
    await start();
    // 4 sockets, 400 queries each (every 10th forwarded), 48 in flight per socket: replies must match
    // their socket and ID, none lost, the local ones with the right address.
    const names = ['web', 'www', 'big7', 'me', 'webhost', 'web.app', 'WeB', 'big12', 'me', 'x.fwd.test'];
    const script = `
      const dgram = require('dgram'); const enc = (id, name) => { const n = Buffer.concat(name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]))); const b = Buffer.alloc(12 + n.length + 5); b.writeUInt16BE(id, 0); b[2] = 1; b.writeUInt16BE(1, 4); n.copy(b, 12); b.writeUInt16BE(1, 12 + n.length + 1); b.writeUInt16BE(1, 12 + n.length + 3); return b; };
      const names = ${JSON.stringify(names)}; const PER = 400, WINDOW = 48; let finished = 0; const result = [];
      for (let s = 0; s < 4; s++) {
        const sock = dgram.createSocket('udp4'); const sent = new Map(); let next = 0, got = 0, bad = 0, local = 0;
        const send = () => { while (next < PER && sent.size < WINDOW) { const id = s * 1000 + next; sent.set(id, names[next % names.length]); sock.send(enc(id, names[next % names.length]), 53, '127.0.0.11'); next++; } };
        sock.on('message', (m) => {
          const id = m.readUInt16BE(0); const name = sent.get(id);
          if (name === undefined || (m[2] & 0x80) === 0) { bad++; return; }
          sent.delete(id); got++;
          if (name !== 'x.fwd.test' && m.readUInt16BE(6) >= 1 && m[m.length - 4] === 10 && m[m.length - 3] === 77) local++;
          if (got === PER) { result[s] = { got, bad, local }; sock.close(); if (++finished === 4) { console.log(JSON.stringify(result)); process.exit(0); } } else send();
        });
        sock.bind(0, () => send());
      }
      setTimeout(() => { console.log(JSON.stringify({ timeout: true, result })); process.exit(1); }, 8000);`;
    const r = await ns!.exec([process.execPath, '-e', script]);
    expect(String(r.stderr)).toBe('');
    const result = JSON.parse(String(r.stdout)) as { got: number; bad: number; local: number }[];
    expect(result).toEqual([0, 1, 2, 3].map(() => ({ got: 400, bad: 0, local: 360 })));
    // The same question in flight is asked once: every forwarded query went upstream or shared an answer.
    expect(up.names.length + resolver!.stats().merged).toBe(160);
  });

  it('a datagram longer than 4096 bytes does not stop serving (the addon drops it unread)', async () => {
    await start();
    const big = Buffer.concat([q('web'), Buffer.alloc(6000)]);
    const script = `const d = require('dgram').createSocket('udp4'); d.on('message', () => { console.log('answered'); });
      d.send(Buffer.from('${big.toString('hex')}', 'hex'), 53, '127.0.0.11', () => setTimeout(() => d.close(), 500));`;
    const r = await ns!.exec([process.execPath, '-e', script]);
    expect(r.exitCode).toBe(0);
    if (path === 'native') expect(String(r.stdout)).toBe('');
    expect(data(await dig('web'))).toEqual(['10.77.0.3']);
  });

  it('forgets a removed container and serves the change at once', async () => {
    const up = await fake({});
    resolver!.setHostUpstreams([up.address]);
    await start();
    expect(data(await dig('web'))).toEqual(['10.77.0.3']);
    resolver!.remove(WEB);
    expect((await dig('web')).status).toBe('NXDOMAIN'); // now forwarded: the upstream does not know it
    expect(up.names).toEqual(['web']);
  });

  it('detach closes the sockets: the port is free again', async () => {
    await start();
    await resolver!.detach(ME);
    const d = await dig('web');
    expect(d.status).toMatch(/^no answer/);
    const again = await openResolverSockets(ns!.path);
    resolver!.attach(ME, again.udp, again.tcp);
    expect(data(await dig('web'))).toEqual(['10.77.0.3']);
  });
});
