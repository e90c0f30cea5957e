// Upstream forwarding on loopback (no root): order, dead memory, strict reply matching, ID restored, TCP.
import dgram from 'node:dgram';
import dnsPacket from 'dns-packet';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { UpstreamForwarder, parseUpstream, sameQuestion } from '../../src/resolver/upstream.js';
import { parseQuery } from '../../src/resolver/handler.js';
import { randomLoopback, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { query } from './fixtures.js';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()!().catch(() => {});
});

async function fake(answers: Parameters<typeof startFakeUpstream>[1]): Promise<FakeUpstream> {
  const u = await startFakeUpstream(randomLoopback(), answers, { port: 20000 + Math.floor(Math.random() * 30000) });
  cleanup.push(() => u.close());
  return u;
}

let nativePath = true;
function forwarder(timeoutMs = 300, maxInFlight?: number, budgetMs?: number): UpstreamForwarder {
  const f = new UpstreamForwarder({ timeoutMs, native: nativePath, ...(maxInFlight ? { maxInFlight } : {}), ...(budgetMs ? { budgetMs } : {}) });
  expect(f.udpPath()).toBe(nativePath ? 'native' : 'dgram');
  cleanup.push(() => f.close());
  return f;
}

const qEnd = (msg: Buffer) => {
  const p = parseQuery(msg);
  if (p.kind !== 'ok') throw new Error('bad query');
  return p.query.qEnd;
};

describe('parseUpstream', () => {
  it.each([
    ['192.0.2.1', { host: '192.0.2.1', port: 53, family: 4 }],
    ['127.0.0.53:5353', { host: '127.0.0.53', port: 5353, family: 4 }],
    ['2001:db8::1', { host: '2001:db8::1', port: 53, family: 6 }],
    ['[::1]:5353', { host: '::1', port: 5353, family: 6 }],
    ['nonsense', undefined],
    ['1.2.3.4:99999', undefined],
  ])('%s', (text, expected) => {
    const u = parseUpstream(text);
    if (expected) expect(u).toMatchObject(expected);
    else expect(u).toBeUndefined();
  });
});

// Both UDP paths: the udpbatch addon and node:dgram (its fallback).
describe.each(['native', 'dgram'] as const)('UpstreamForwarder, UDP through %s', (path) => {
  beforeAll(() => {
    nativePath = path === 'native';
  });

  it('passes the answer back verbatim but for the ID, NXDOMAIN included', async () => {
    const up = await fake({ 'a.test': '192.0.2.1' });
    const f = forwarder();
    const q = query('A.test', 'A', { id: 777 });
    const r = await f.forward(q, qEnd(q), [up.address], 'udp');
    const p = dnsPacket.decode(r.reply!);
    expect(p.id).toBe(777);
    expect(p.answers?.[0]).toMatchObject({ name: 'A.test', data: '192.0.2.1' });
    const nx = query('nope.test', 'A', { id: 778 });
    const r2 = await f.forward(nx, qEnd(nx), [up.address], 'tcp');
    expect(dnsPacket.decode(r2.reply!)).toMatchObject({ id: 778, rcode: 'NXDOMAIN' });
    expect(up.udpQueries).toBe(1);
    expect(up.tcpQueries).toBe(1);
  });

  it('tries at most 3 upstreams, in order, remembering dead ones', async () => {
    const silent = await fake({ 'a.test': 'DROP' });
    const sf = await fake({ 'a.test': 'SERVFAIL' });
    const good = await fake({ 'a.test': '192.0.2.9' });
    const f = forwarder(200);
    const q = query('a.test', 'A');
    const r = await f.forward(q, qEnd(q), [silent.address, sf.address, sf.address, good.address], 'udp');
    expect(r.reply).toBeNull();
    expect(r.failures.map((x) => x.outcome)).toEqual(['timeout', 'servfail', 'servfail']);
    expect(f.deadServers()).toEqual([silent.address]);
    expect(f.order([silent.address, good.address]).map((u) => u.key)).toEqual([good.address, silent.address]);
    const r2 = await f.forward(q, qEnd(q), [silent.address, good.address], 'udp');
    expect(r2.failures).toEqual([]);
    expect(dnsPacket.decode(r2.reply!).answers?.[0]).toMatchObject({ data: '192.0.2.9' });
  });

  it('ignores replies with a wrong question or from a wrong port, and waits for the real one', async () => {
    const ip = randomLoopback();
    const server = dgram.createSocket('udp4');
    const spoofer = dgram.createSocket('udp4');
    await new Promise<void>((r) => server.bind(0, ip, () => r()));
    await new Promise<void>((r) => spoofer.bind(0, ip, () => r()));
    cleanup.push(async () => (server.close(), spoofer.close()));
    server.on('message', (msg, rinfo) => {
      const q = dnsPacket.decode(msg);
      const answer = (name: string) => dnsPacket.encode({ type: 'response', id: q.id!, questions: [{ name, type: 'A' }], answers: [{ type: 'A', name, data: '192.0.2.66' }] });
      server.send(answer('evil.test'), rinfo.port, rinfo.address); // wrong question
      spoofer.send(answer('b.test'), rinfo.port, rinfo.address); // wrong source port
      setTimeout(() => server.send(answer('B.TEST'), rinfo.port, rinfo.address), 20); // the real one (case may differ)
    });
    const f = forwarder();
    const q = query('b.test', 'A', { id: 5 });
    const r = await f.forward(q, qEnd(q), [`${ip}:${(server.address() as { port: number }).port}`], 'udp');
    expect(dnsPacket.decode(r.reply!).questions?.[0]?.name).toBe('B.TEST');
    // dgram's sockets are connected to their upstream: the kernel itself drops the wrong port's reply.
    expect(f.mismatched).toBe(path === 'native' ? 2 : 1);
  });

  it('a reply that comes after its attempt timed out is ignored, and the next upstream answers', async () => {
    const ip = randomLoopback();
    const slow = dgram.createSocket('udp4');
    await new Promise<void>((r) => slow.bind(0, ip, () => r()));
    cleanup.push(async () => void slow.close());
    let late = 0;
    slow.on('message', (msg, rinfo) => {
      const q = dnsPacket.decode(msg);
      const name = q.questions![0]!.name;
      const reply = dnsPacket.encode({ type: 'response', id: q.id!, questions: [{ name, type: 'A' }], answers: [{ type: 'A', name, data: '192.0.2.77' }] });
      setTimeout(() => slow.send(reply, rinfo.port, rinfo.address, () => late++), 400);
    });
    const good = await fake({ 'late.test': '192.0.2.9' });
    const f = forwarder(150);
    const q = query('late.test', 'A', { id: 4242 });
    const r = await f.forward(q, qEnd(q), [`${ip}:${(slow.address() as { port: number }).port}`, good.address], 'udp');
    expect(r.failures.map((x) => x.outcome)).toEqual(['timeout']);
    expect(dnsPacket.decode(r.reply!)).toMatchObject({ id: 4242, answers: [{ data: '192.0.2.9' }] });
    expect(q.readUInt16BE(0)).toBe(4242); // the caller's bytes get the client's ID back
    await new Promise((r) => setTimeout(r, 500));
    expect(late).toBe(1);
    expect(f.mismatched).toBe(1);
  });

  it('beyond its in-flight limit a query fails at once, and no upstream is taken for dead', async () => {
    const silent = await fake({ 'w0.test': 'DROP', 'w1.test': 'DROP', 'w2.test': 'DROP' }); // the three below stay in flight
    const other = await fake({});
    const f = forwarder(2000, 3);
    for (let i = 0; i < 3; i++) {
      const q = query(`w${i}.test`, 'A');
      void f.forward(q, qEnd(q), [silent.address], 'udp');
    }
    const q = query('over.test', 'A', { id: 99 });
    const r = await f.forward(q, qEnd(q), [silent.address, other.address], 'udp');
    expect(r.reply).toBeNull();
    expect(r.failures).toEqual([{ server: silent.address, outcome: 'error', detail: '3 queries already in flight upstream' }]);
    expect(q.readUInt16BE(0)).toBe(99);
    expect(f.deadServers()).toEqual([]);
    expect(other.udpQueries).toBe(0);
  });

  it('keeps many queries apart: 150 at once, each reply to its own query', async () => {
    const up = await fake({});
    const f = forwarder(2000);
    const results = await Promise.all(
      Array.from({ length: 150 }, (_, i) => {
        const q = query(`n${i}.many.test`, 'A', { id: i });
        return f.forward(q, qEnd(q), [up.address], 'udp').then((r) => ({ i, p: dnsPacket.decode(r.reply!) }));
      }),
    );
    for (const { i, p } of results) expect({ id: p.id, name: p.questions?.[0]?.name, rcode: p.rcode }).toEqual({ id: i, name: `n${i}.many.test`, rcode: 'NXDOMAIN' });
    expect(up.udpQueries).toBe(150);
  });

  it('passes on UDP replies of up to 64 KiB (an upstream that fills a big EDNS buffer)', async () => {
    const up = await fake({ 'big.test': { txtBytes: 16000 }, 'huge.test': { txtBytes: 62000 } });
    const f = forwarder();
    for (const [name, bytes] of [['big.test', 16000], ['huge.test', 62000]] as const) {
      const q = query(name, 'TXT', { edns: 65535, id: 9 });
      const r = await f.forward(q, qEnd(q), [up.address], 'udp');
      expect(r.failures).toEqual([]);
      expect(r.reply!.length).toBeGreaterThanOrEqual(bytes);
      const p = dnsPacket.decode(r.reply!);
      expect(p).toMatchObject({ id: 9, rcode: 'NOERROR' });
      expect(p.answers!.length).toBe(Math.ceil((bytes - 12 - name.length - 6) / 1040));
    }
    expect(f.mismatched).toBe(0);
    expect(f.deadServers()).toEqual([]);
  });

  it('waits for a slow only upstream within the budget, asking again, and takes a late reply to the first attempt', async () => {
    // Only the first query is ever answered, after 700 ms: attempts at 0, 300, 600 ms; the reply to the first one counts.
    const up = await fake({ 'slow.test': { delayMs: 700, then: '192.0.2.7', once: true } });
    const f = forwarder(300, undefined, 3000);
    const q = query('slow.test', 'A', { id: 31 });
    const r = await f.forward(q, qEnd(q), [up.address], 'udp');
    expect(dnsPacket.decode(r.reply!)).toMatchObject({ id: 31, answers: [{ data: '192.0.2.7' }] });
    expect(r.failures).toEqual([]); // it answered: no failure to report
    expect(f.deadServers()).toEqual([]); // and the only upstream is not "dead"
    expect(up.udpQueries).toBeGreaterThanOrEqual(2);
  });

  it('a slow upstream that answers late beats the next one, which was asked meanwhile', async () => {
    const slow = await fake({ 'lag.test': { delayMs: 400, then: '192.0.2.1', once: true } });
    const silent = await fake({ 'lag.test': 'DROP' });
    const f = forwarder(200, undefined, 3000);
    const q = query('lag.test', 'A');
    const r = await f.forward(q, qEnd(q), [slow.address, silent.address], 'udp');
    expect(dnsPacket.decode(r.reply!).answers?.[0]).toMatchObject({ data: '192.0.2.1' });
    expect(silent.udpQueries).toBeGreaterThanOrEqual(1);
    // Its late answer is no failure (the silent one may or may not have timed out by then).
    expect(r.failures.filter((x) => x.server === slow.address)).toEqual([]);
  });

  it('gives up with SERVFAIL (null) only when the budget is spent', async () => {
    const up = await fake({ 'never.test': 'DROP' });
    const f = forwarder(100, undefined, 450);
    const q = query('never.test', 'A');
    const r = await f.forward(q, qEnd(q), [up.address], 'udp');
    expect(r.reply).toBeNull();
    expect(r.failures).toEqual([{ server: up.address, outcome: 'timeout' }]);
    expect(up.udpQueries).toBeGreaterThanOrEqual(4); // asked again every 100 ms
  });

  it.each(['udp', 'tcp'] as const)('fails over at once from an upstream whose port is closed (%s)', async (transport) => {
    const closed = await fake({});
    await closed.close(); // ICMP port unreachable (UDP) or a reset (TCP) from now on
    const good = await fake({ 'x.test': '192.0.2.5' });
    // A timeout would take 20 s, past the test's own limit: the outcome shows which way it failed.
    const f = forwarder(20_000, undefined, 30_000);
    const q = query('x.test', 'A', { id: 12 });
    const r = await f.forward(q, qEnd(q), [closed.address, good.address], transport);
    expect(r.failures).toEqual([{ server: closed.address, outcome: 'error', detail: 'port unreachable' }]);
    expect(dnsPacket.decode(r.reply!)).toMatchObject({ id: 12, answers: [{ data: '192.0.2.5' }] });
    // Alone, it fails at once too: SERVFAIL for the client, not a wait.
    const f2 = forwarder(20_000, undefined, 30_000);
    const r2 = await f2.forward(q, qEnd(q), [closed.address], transport);
    expect(r2.reply).toBeNull();
    expect(r2.failures).toEqual([{ server: closed.address, outcome: 'error', detail: 'port unreachable' }]);
  });

  it('merges identical questions in flight: one upstream query, each client its own ID and case', async () => {
    const up = await fake({ 'm.test': { delayMs: 150, then: '192.0.2.8' } });
    const f = forwarder();
    const asks = [query('m.test', 'A', { id: 1 }), query('M.TEST', 'A', { id: 2 }), query('m.test', 'AAAA', { id: 3 }), query('m.test', 'A', { id: 4, edns: 1232 })];
    const servers = [up.address]; // the resolver keeps one list per upstream set: queries merge within it
    const replies = await Promise.all(asks.map((q) => f.forward(q, qEnd(q), servers, 'udp')));
    const got = replies.map((r) => dnsPacket.decode(r.reply!));
    expect(got.map((p) => [p.id, p.questions?.[0]?.name, p.questions?.[0]?.type, p.answers?.[0]?.data])).toEqual([
      [1, 'm.test', 'A', '192.0.2.8'],
      [2, 'M.TEST', 'A', '192.0.2.8'],
      [3, 'm.test', 'AAAA', undefined],
      [4, 'm.test', 'A', '192.0.2.8'],
    ]);
    expect(up.udpQueries).toBe(3); // A, AAAA, and A with EDNS (a different query)
    expect(f.merged).toBe(1);
    expect(asks[1]!.readUInt16BE(0)).toBe(2);
  });

  it('compares questions case-insensitively', () => {
    const q = query('Ab.c', 'A');
    const r = Buffer.from(query('aB.C', 'A'));
    expect(sameQuestion(r, q.subarray(12, qEnd(q)))).toBe(true);
    expect(sameQuestion(query('ab.d', 'A'), q.subarray(12, qEnd(q)))).toBe(false);
  });
});
