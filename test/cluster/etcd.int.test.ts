// src/cluster/etcd.ts against a real 3-member etcd 3.4 cluster (test/helpers/etcd.ts): reads and writes,
// the claim only one of many writers wins, leases that expire on time, a watch that resumes across a
// member's death, and calls that go on while one member of three is down.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Etcd, type WatchEvent } from '../../src/cluster/etcd.js';
import { HAVE_ETCD, createEtcdCluster, type EtcdCluster } from '../helpers/etcd.js';

const d = HAVE_ETCD ? describe : describe.skip;
if (!HAVE_ETCD) console.log('skipped: the etcd client tests need /usr/bin/etcd (scripts/setup.sh installs etcd-server, no service started)');

let cluster: EtcdCluster;
let etcd: Etcd;
beforeAll(async () => {
  if (!HAVE_ETCD) return;
  cluster = await createEtcdCluster(3);
  etcd = new Etcd({ endpoints: cluster.endpoints });
}, 60_000);
afterAll(async () => {
  etcd?.close();
  await cluster?.teardown();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

d('etcd client on the JSON gateway', () => {
  it('puts, gets, ranges a prefix and deletes it', async () => {
    const rev = await etcd.put('/t/a/1', 'one');
    await etcd.put('/t/a/2', 'two ünïcode');
    await etcd.put('/t/b/1', 'other');
    expect(rev).toBeGreaterThan(0);
    expect(await etcd.get('/t/a/1')).toMatchObject({ key: '/t/a/1', value: 'one', version: 1, createRevision: rev, modRevision: rev });
    const r = await etcd.range('/t/a/');
    expect(r.kvs.map((kv) => [kv.key, kv.value])).toEqual([
      ['/t/a/1', 'one'],
      ['/t/a/2', 'two ünïcode'],
    ]);
    expect(r.revision).toBeGreaterThanOrEqual(rev);
    expect(await etcd.delete('/t/a/', { prefix: true })).toBe(2);
    expect(await etcd.get('/t/a/1')).toBeUndefined();
    expect(await etcd.get('/t/b/1')).toMatchObject({ value: 'other' });
  });

  it('of 40 writers claiming one key at once, exactly one wins; a compare on mod revision fences the rest', async () => {
    const clients = Array.from({ length: 4 }, (_, i) => new Etcd({ endpoints: [cluster.endpoints[i % 3]!] }));
    try {
      const wins = await Promise.all(Array.from({ length: 40 }, (_, i) => clients[i % 4]!.create('/t/claim', `writer-${i}`)));
      expect(wins.filter(Boolean)).toHaveLength(1);
      const kv = (await etcd.get('/t/claim'))!;
      expect(kv.value).toBe(`writer-${wins.indexOf(true)}`);
      expect(await etcd.replace('/t/claim', kv.modRevision + 1, 'late')).toBe(false);
      expect(await etcd.replace('/t/claim', kv.modRevision, 'moved')).toBe(true);
      expect(await etcd.deleteIf('/t/claim', kv.modRevision)).toBe(false);
      expect(await etcd.get('/t/claim')).toMatchObject({ value: 'moved' });
    } finally {
      for (const c of clients) c.close();
    }
  });

  it('a lease keeps its keys while renewed, and they go when it expires or is revoked', async () => {
    const lease = await etcd.grant(2);
    await etcd.put('/t/lease/kept', 'x', lease);
    for (let i = 0; i < 5; i++) {
      await sleep(600);
      expect(await etcd.keepAlive(lease)).toBeGreaterThan(0);
    }
    expect(await etcd.get('/t/lease/kept')).toMatchObject({ lease });
    const short = await etcd.grant(1);
    await etcd.put('/t/lease/gone', 'y', short);
    let gone = false;
    for (let i = 0; i < 40 && !gone; i++) {
      await sleep(100);
      gone = (await etcd.get('/t/lease/gone')) === undefined;
    }
    expect(gone).toBe(true);
    expect(await etcd.keepAlive(short)).toBe(0);
    await etcd.revoke(lease);
    expect(await etcd.get('/t/lease/kept')).toBeUndefined();
  });

  it('a watch delivers puts and deletes in order, and resumes from where it was when its member dies', async () => {
    const start = await etcd.put('/t/w/0', 'before');
    const seen: WatchEvent[] = [];
    const states: boolean[] = [];
    // Connected to the member the client asked last: find which, to kill it.
    const w = etcd.watch('/t/w/', start + 1, { onEvents: (ev) => seen.push(...ev), onState: (up) => states.push(up) });
    try {
      for (let i = 0; i < 50 && !states.includes(true); i++) await sleep(20);
      await etcd.put('/t/w/1', 'a');
      await etcd.delete('/t/w/0');
      for (let i = 0; i < 50 && seen.length < 2; i++) await sleep(20);
      expect(seen.map((e) => [e.type, e.kv.key])).toEqual([
        ['put', '/t/w/1'],
        ['delete', '/t/w/0'],
      ]);
      // Kill every member in turn but one at a time: the watch's own member dies once.
      for (let m = 0; m < 3; m++) {
        await cluster.stop(m);
        await etcd.put(`/t/w/m${m}`, String(m)); // written while that member is down
        await cluster.start(m);
      }
      for (let i = 0; i < 100 && seen.length < 5; i++) await sleep(50);
      expect(seen.map((e) => e.kv.key)).toEqual(['/t/w/1', '/t/w/0', '/t/w/m0', '/t/w/m1', '/t/w/m2']);
      const revs = seen.map((e) => e.kv.modRevision);
      expect([...revs].sort((a, b) => a - b)).toEqual(revs);
      expect(new Set(revs).size).toBe(revs.length); // nothing delivered twice
    } finally {
      w.close();
    }
  }, 60_000);

  it('goes on with one member of three down, and says which members it tried when none answers', async () => {
    await cluster.stop(0);
    try {
      const t0 = Date.now();
      for (let i = 0; i < 20; i++) await etcd.put(`/t/down/${i}`, String(i));
      expect((await etcd.range('/t/down/')).kvs).toHaveLength(20);
      console.log(`20 writes with member 1 of 3 down: ${Date.now() - t0} ms`);
    } finally {
      await cluster.start(0);
    }
    const lonely = new Etcd({ endpoints: ['http://127.0.0.1:1'], timeoutMs: 300 });
    await expect(lonely.get('/x')).rejects.toThrow(/etcd \/v3\/kv\/range: no member answered \(127\.0\.0\.1:1\)/);
    lonely.close();
  }, 60_000);
});
