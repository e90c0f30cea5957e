// Overlay network records in a real 3-member etcd (src/cluster/networks.ts): hosts creating networks at once
// never share a name, subnet or VNI; a given subnet that overlaps is refused; rm is refused while any host
// holds an address on the network, and frees its name, subnet and VNI afterwards.
import { describe, expect, it } from 'vitest';
import { claimAddress, releaseAddress } from '../../src/cluster/claims.js';
import { FIRST_VNI, createOverlayNetwork, listOverlayNetworks, removeOverlayNetwork } from '../../src/cluster/networks.js';
import { HAVE_ETCD, etcdClusterPerFile } from '../helpers/etcd.js';

const d = HAVE_ETCD ? describe : describe.skip;
if (!HAVE_ETCD) console.log('skipped: the overlay network record tests need /usr/bin/etcd (scripts/setup.sh installs etcd-server, no service started)');

const e = etcdClusterPerFile();
const hosts = e.hosts;

d('overlay network records', () => {
  it('3 hosts creating 12 networks at once: 12 names, subnets and VNIs, none shared; every host lists them', async () => {
    const nets = await Promise.all(Array.from({ length: 12 }, (_, i) => createOverlayNetwork(hosts[i % 3]!, '/n1/', { name: `ov${i}` })));
    expect(new Set(nets.map((n) => n.subnet)).size).toBe(12);
    expect(new Set(nets.map((n) => n.vni)).size).toBe(12);
    expect(Math.min(...nets.map((n) => n.vni))).toBe(FIRST_VNI);
    for (const n of nets) {
      expect(n.subnet).toMatch(/^10\.0\.\d+\.0\/24$/);
      expect(n.gateway).toBe(n.subnet.replace('.0/24', '.1'));
    }
    for (const h of hosts) expect((await listOverlayNetworks(h, '/n1/')).map((n) => n.name).sort()).toEqual(nets.map((n) => n.name).sort());
  });

  it('the same name from two hosts at once: one network, the other refused', async () => {
    const r = await Promise.allSettled([0, 1, 2].map((i) => createOverlayNetwork(hosts[i]!, '/n2/', { name: 'shared' })));
    expect(r.filter((x) => x.status === 'fulfilled')).toHaveLength(1);
    for (const x of r.filter((x) => x.status === 'rejected')) expect(String((x as PromiseRejectedResult).reason)).toMatch(/network with name shared already exists/);
  });

  it('a given subnet is used, and one overlapping another network is refused', async () => {
    const a = await createOverlayNetwork(hosts[0]!, '/n3/', { name: 'a', subnet: '10.99.0.0/16', internal: true, attachable: true });
    expect(a).toMatchObject({ subnet: '10.99.0.0/16', gateway: '10.99.0.1', internal: true, attachable: true, driver: 'overlay' });
    await expect(createOverlayNetwork(hosts[1]!, '/n3/', { name: 'b', subnet: '10.99.5.0/24' })).rejects.toThrow('subnet 10.99.5.0/24 overlaps network a (10.99.0.0/16)');
  });

  it('rm is refused while a host holds an address on it; then it frees name, subnet and VNI', async () => {
    const net = await createOverlayNetwork(hosts[0]!, '/n4/', { name: 'busy' });
    const owner = { etcd: hosts[1]!, prefix: '/n4/', host: '192.168.77.2', lease: await hosts[1]!.grant(10) };
    const claim = await claimAddress(owner, net.id, { subnet: net.subnet, gateway: net.gateway }, 'c'.repeat(64));
    await expect(removeOverlayNetwork(hosts[2]!, '/n4/', 'busy')).rejects.toThrow(/network busy id [0-9a-f]{12} has active endpoints \(on 192\.168\.77\.2\)/);
    await releaseAddress(owner, net.id, claim);
    await removeOverlayNetwork(hosts[2]!, '/n4/', 'busy');
    expect(await listOverlayNetworks(hosts[0]!, '/n4/')).toEqual([]);
    const again = await createOverlayNetwork(hosts[1]!, '/n4/', { name: 'busy' });
    expect([again.subnet, again.vni]).toEqual([net.subnet, net.vni]);
    await expect(removeOverlayNetwork(hosts[0]!, '/n4/', 'nope')).rejects.toThrow('network nope not found');
  });
});
