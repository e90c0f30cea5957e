// A host's membership (src/cluster/membership.ts) in a real 3-member etcd: joined, seen by the others, cut
// off from the store (its only member stopped): unreachable, then fenced, while the others see its key go
// when its lease expires; back: a new lease, said to the daemon (onRejoin), its key back; leaving ends it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Etcd } from '../../src/cluster/etcd.js';
import { Membership, type MemberState } from '../../src/cluster/membership.js';
import { HAVE_ETCD, createEtcdCluster, type EtcdCluster } from '../helpers/etcd.js';

const d = HAVE_ETCD ? describe : describe.skip;
if (!HAVE_ETCD) console.log('skipped: the membership tests need /usr/bin/etcd (scripts/setup.sh installs etcd-server, no service started)');

let cluster: EtcdCluster;
beforeAll(async () => {
  if (!HAVE_ETCD) return;
  cluster = await createEtcdCluster(3);
}, 60_000);
afterAll(async () => {
  await cluster?.teardown();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(what: () => Promise<boolean> | boolean, ms: number): Promise<number> {
  const t0 = Date.now();
  while (!(await what())) {
    if (Date.now() - t0 > ms) throw new Error(`not within ${ms} ms`);
    await sleep(50);
  }
  return Date.now() - t0;
}

d('cluster membership', () => {
  it('joins, is fenced when cut off from the store while the others see it go, and rejoins with a new lease', async () => {
    // The host reaches the store through member 1 only; the others watch through members 2 and 3.
    const own = new Etcd({ endpoints: [cluster.endpoints[0]!], timeoutMs: 300 });
    const others = new Etcd({ endpoints: cluster.endpoints.slice(1) });
    const states: MemberState[] = [];
    const rejoined: string[] = [];
    const m = new Membership({ etcd: own, prefix: '/dnsnet-test/', host: '192.168.77.1', ttl: 2, fenceAfterMs: 3000, onState: (s) => states.push(s), onRejoin: (l) => rejoined.push(l) });
    const seen = async () => (await others.range('/dnsnet-test/hosts/')).kvs.some((kv) => kv.key.endsWith('/192.168.77.1'));
    try {
      await m.start();
      expect(m.state).toBe('joined');
      expect(await seen()).toBe(true);
      const first = m.lease!;
      // Renewed: still there after three TTLs.
      await sleep(6000);
      expect(await seen()).toBe(true);

      await cluster.stop(0);
      const gone = await until(async () => !(await seen()), 10_000);
      const fenced = await until(() => m.state === 'fenced', 10_000);
      console.log(`cut off: its key gone for the others after ${gone} ms (TTL 2 s), fenced itself after ${gone + fenced} ms`);
      expect(states).toContain('unreachable');

      await cluster.start(0);
      await until(() => m.state === 'joined', 15_000);
      expect(rejoined).toHaveLength(1);
      expect(rejoined[0]).not.toBe(first);
      expect(await seen()).toBe(true);

      await m.stop();
      expect(m.state).toBe('left');
      expect(await seen()).toBe(false);
    } finally {
      await m.stop();
      own.close();
      others.close();
    }
  }, 90_000);
});
