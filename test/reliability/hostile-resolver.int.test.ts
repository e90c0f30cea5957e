// Hostile input to the embedded resolver, end to end: from inside one container, 100 000 random and
// mutated datagrams plus broken TCP streams at 127.0.0.11:53, while another container keeps resolving.
// Every valid lookup must be answered, the daemon must live on with bounded memory and no fd leak.
import fs from 'node:fs';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { leftovers, type DnsnetEnv } from '../helpers/dnsnet-env.js';
import type { FakeUpstream } from '../helpers/fake-upstream.js';
import { daemonPid, envWithUpstream, fdCount, lookup, nodeInNetns, rssKiB, type Ctr } from './helpers.js';

const DATAGRAMS = 100_000;

let e: DnsnetEnv;
let upstream: FakeUpstream;

beforeEach(async () => {
  ({ e, upstream } = await envWithUpstream({ 'www.example.test': '192.0.2.44' }));
});

afterEach(async () => {
  await e.teardown();
  await upstream.close();
  expect(await leftovers(e)).toEqual([]);
});

interface ResolverStats {
  resolver: { queries: number; local: number; forwarded: number; dropped: number; upstreamFailures: number };
}

it(`survives ${DATAGRAMS} hostile datagrams and broken TCP streams while another container resolves`, { timeout: 180_000 }, async () => {
  await e.ok(['network', 'create', 'app']);
  const ids: Record<string, string> = {};
  for (const n of ['web', 'mallory', 'asker']) ids[n] = (await e.ok(['run', '-d', '--name', n, '--network', 'app', 'sleep', 'infinity'])).trim();
  const webIp = (await e.json<Ctr[]>(['inspect', 'web']))[0]!.NetworkSettings.Networks.app!.IPAddress;
  // Warm up: the forwarder opens its pool of upstream sockets on the first forwarded query.
  expect(await lookup(ids.asker!, 'www.example.test')).toEqual({ rcode: 'NOERROR', answers: ['192.0.2.44'] });
  expect(await lookup(ids.asker!, 'www.example.test', { tcp: true })).toEqual({ rcode: 'NOERROR', answers: ['192.0.2.44'] });
  const pid = daemonPid(e);
  const before = await e.json<ResolverStats>(['stats', '--format', 'json']);
  const rss0 = rssKiB(pid);
  const fd0 = fdCount(pid);

  let rssMax = rss0;
  const sampler = setInterval(() => (rssMax = Math.max(rssMax, rssKiB(pid))), 100);
  const stopFile = `${e.dir}/stop-load`;
  try {
    const load = nodeInNetns(ids.asker!, 'load.mjs', ['web', webIp, stopFile, '150', '2', '2000'], 170_000);
    const fuzz = await nodeInNetns(ids.mallory!, 'fuzz.mjs', [String(DATAGRAMS), '20240611', 'web', '10000'], 170_000);
    fs.writeFileSync(stopFile, '');
    const loaded = await load;
    clearInterval(sampler);
    expect(fuzz.exitCode, `${String(fuzz.stderr)} ${fuzz.message ?? ""}`).toBe(0);
    expect(loaded.exitCode, String(loaded.stderr)).toBe(0);
    const f = JSON.parse(String(fuzz.stdout)) as {
      udp: { sent: number; sendErrors: number; replies: number; badReplies: number; seconds: number };
      tcp: { connections: number; closedEarly: Record<string, number>; stillOpenAfterIdle: number };
      after: { udp: string[] | null; tcp: string[] | null };
    };
    const l = JSON.parse(String(loaded.stdout)) as { sent: number; answered: number; wrong: number; lost: number; tcp: number; maxLatencyMs: number };
    const after = await e.json<ResolverStats>(['stats', '--format', 'json']);
    const rss1 = rssKiB(pid);
    const fd1 = fdCount(pid);
    const figures = {
      datagramsSent: f.udp.sent,
      sendErrors: f.udp.sendErrors,
      repliesToHostile: f.udp.replies,
      malformedReplies: f.udp.badReplies,
      floodSeconds: f.udp.seconds,
      daemonQueriesSeen: after.resolver.queries - before.resolver.queries,
      daemonDropped: after.resolver.dropped - before.resolver.dropped,
      daemonForwarded: after.resolver.forwarded - before.resolver.forwarded,
      tcpConnections: f.tcp.connections,
      tcpClosedEarly: f.tcp.closedEarly,
      tcpStillOpenAfterIdle: f.tcp.stillOpenAfterIdle,
      lookups: l,
      rssKiB: { before: rss0, max: rssMax, after: rss1 },
      fds: { before: fd0, after: fd1 },
    };
    console.log(`[reliability] hostile resolver: ${JSON.stringify(figures)}`);

    // The daemon lived through it, and is the same process.
    expect(fs.existsSync(`/proc/${pid}`)).toBe(true);
    expect(daemonPid(e)).toBe(pid);
    expect(f.udp.sent).toBe(DATAGRAMS);
    expect(f.udp.badReplies).toBe(0);
    // Most of the flood reached the daemon (the rest overflowed the socket's kernel buffer).
    expect(figures.daemonQueriesSeen - l.sent).toBeGreaterThan(DATAGRAMS / 2);
    // Every valid lookup of the other container was answered, correctly, over UDP and TCP.
    expect(l.sent).toBeGreaterThan(100);
    expect(l.tcp).toBeGreaterThan(10);
    expect(l.lost).toBe(0);
    expect(l.wrong).toBe(0);
    expect(l.answered).toBe(l.sent);
    // The attacker's own sockets still work once it behaves.
    expect(f.after.udp).toEqual([webIp]);
    expect(f.after.tcp).toEqual([webIp]);
    // TCP: a zero length closes at once, excess connections are cut, idle ones are closed.
    expect(f.tcp.closedEarly['zero-length']).toBe(10);
    expect(f.tcp.closedEarly.burst ?? 0).toBeGreaterThanOrEqual(200 - 64);
    expect(f.tcp.stillOpenAfterIdle).toBe(0);
    // Memory bounded, no descriptor leak (the forwarder's UDP pool grows lazily to at most 8 sockets).
    expect(rssMax).toBeLessThan(rss0 + 150 * 1024);
    expect(fd1).toBeLessThanOrEqual(fd0 + 8);
    // And the daemon still does its job.
    await e.ok(['run', '-d', '--name', 'late', '--network', 'app', 'sleep', 'infinity']);
    await e.ok(['rm', '-f', 'late']);
  } finally {
    clearInterval(sampler);
  }
});
