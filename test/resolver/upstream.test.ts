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
function forwarder(timeoutMs = 300, maxInFlight?: number): UpstreamForwarder {
  const f = new UpstreamForwarder({ timeoutMs, native: nativePath, ...(maxInFlight ? { maxInFlight } : {}) });
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
    expect(f.mismatched).toBe(2);
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
    const silent = await fake({});
    const other = await fake({});
    await silent.close(); // nothing answers there now: the three below stay in flight
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

  it('compares questions case-insensitively', () => {
    const q = query('Ab.c', 'A');
    const r = Buffer.from(query('aB.C', 'A'));
    expect(sameQuestion(r, q.subarray(12, qEnd(q)))).toBe(true);
    expect(sameQuestion(query('ab.d', 'A'), q.subarray(12, qEnd(q)))).toBe(false);
  });
});
