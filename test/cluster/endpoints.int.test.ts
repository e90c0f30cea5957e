// The overlay endpoints' local copy (src/cluster/endpoints.ts) in a real 3-member etcd: what one host
// publishes the others' copies get; a dead host's endpoints go with its lease; a book started later reads
// what is there; a member dying under a watch loses nothing.
import { describe, expect, it } from 'vitest';
import { EndpointBook, publishEndpoint, withdrawEndpoint, type EndpointChange, type OverlayEndpoint } from '../../src/cluster/endpoints.js';
import { HAVE_ETCD, etcdClusterPerFile } from '../helpers/etcd.js';

const d = HAVE_ETCD ? describe : describe.skip;
if (!HAVE_ETCD) console.log('skipped: the overlay endpoint tests need /usr/bin/etcd (scripts/setup.sh installs etcd-server, no service started)');

const e = etcdClusterPerFile();
const hosts = e.hosts;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(what: () => boolean, ms = 10_000): Promise<number> {
  const t0 = Date.now();
  while (!what()) {
    if (Date.now() - t0 > ms) throw new Error(`not within ${ms} ms`);
    await sleep(20);
  }
  return Date.now() - t0;
}
const ep = (n: number, host: string): OverlayEndpoint => ({ network: 'net1', container: `${n}`.padStart(64, '0'), name: `c${n}`, aliases: [`alias${n}`], ip: `10.0.0.${n + 2}`, mac: `02:42:0a:00:00:${(n + 2).toString(16).padStart(2, '0')}`, host });

d('overlay endpoints, copied on every host', () => {
  it('what one host publishes reaches the others; withdrawn, it goes; a dead host takes its endpoints along', async () => {
    const seen: EndpointChange[] = [];
    const book = new EndpointBook(hosts[1]!, '/e1/', (c) => seen.push(...c));
    await book.start();
    try {
      const leaseA = await hosts[0]!.grant(10);
      const t0 = Date.now();
      await publishEndpoint(hosts[0]!, '/e1/', ep(1, '192.168.77.1'), leaseA);
      const ms = await until(() => book.of('net1').length === 1);
      console.log(`an endpoint published on host A in host B's copy after ${Date.now() - t0} ms (${ms} ms of waiting)`);
      expect(book.of('net1')[0]).toMatchObject({ name: 'c1', ip: '10.0.0.3', host: '192.168.77.1' });
      await withdrawEndpoint(hosts[0]!, '/e1/', 'net1', ep(1, '').container);
      await until(() => book.of('net1').length === 0);
      expect(seen.map((c) => `${c.type} ${c.endpoint.name}`)).toEqual(['up c1', 'down c1']);

      // Host C publishes on a short lease and dies (no renewal).
      const leaseC = await hosts[2]!.grant(1);
      await publishEndpoint(hosts[2]!, '/e1/', ep(2, '192.168.77.3'), leaseC);
      await publishEndpoint(hosts[2]!, '/e1/', ep(3, '192.168.77.3'), leaseC);
      await until(() => book.of('net1').length === 2);
      const gone = await until(() => book.of('net1').length === 0, 5000);
      console.log(`a dead host's endpoints gone from the copy ${gone} ms after they arrived (lease TTL 1 s)`);

      // A book started later reads what is there.
      await publishEndpoint(hosts[0]!, '/e1/', ep(4, '192.168.77.1'), leaseA);
      const late = new EndpointBook(hosts[2]!, '/e1/', () => undefined);
      await late.start();
      expect(late.all().map((e) => e.name)).toEqual(['c4']);
      late.close();
    } finally {
      book.close();
    }
  });

  it('a member dying under the watch: the copy loses nothing written meanwhile', async () => {
    const book = new EndpointBook(hosts[0]!, '/e2/', () => undefined);
    await book.start();
    try {
      const lease = await hosts[1]!.grant(30);
      for (let m = 0; m < 3; m++) {
        await e.cluster.stop(m);
        await publishEndpoint(hosts[1]!, '/e2/', ep(10 + m, '192.168.77.2'), lease);
        await e.cluster.start(m);
      }
      await until(() => book.all().length === 3, 15_000);
      expect(book.all().map((e) => e.name).sort()).toEqual(['c10', 'c11', 'c12']);
    } finally {
      book.close();
    }
  }, 60_000);
});
